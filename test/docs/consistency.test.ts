/**
 * The documents agree with the code: every error code with its HTTP status, every close code with what a
 * client does, every metric under its real name, every request's fields and limits (the `currentTime` cap
 * included) and the legacy forms. The code is the truth: these tests read the docs/ pages and compare them
 * with the running app, its tables (ERROR_CODES, CLOSE_CODES, HANDLERS) and its schemas.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import type { TSchema } from 'typebox'
import t from 'tap'
import { ERROR_CODES } from '../../src/errors.js'
import { HANDLERS } from '../../src/realtime/handlers.js'
import { CLOSE_CODES, EventData, RequestEnvelope } from '../../src/realtime/protocol.js'
import { CurrentTime } from '../../src/rooms/shapes.js'
import { createTestApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

const docsDir = new URL('../../docs/', import.meta.url)
const readDoc = (name: string): string => readFileSync(new URL(name, docsDir), 'utf8')
/** Every page a reader may be sent to: the README and docs/*.md. */
const pages = (): Array<{ name: string, text: string }> => [
  { name: 'README.md', text: readFileSync(new URL('../../README.md', import.meta.url), 'utf8') },
  ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).sort().map((name) => ({ name: `docs/${name}`, text: readDoc(name) }))
]

/** The text under `## heading` (or `### heading`) up to the next heading of the same or a higher level. */
function section (text: string, heading: string): string {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => /^#{2,3} /.test(l) && l.replace(/^#+ /, '') === heading)
  if (start === -1) throw new Error(`no section "${heading}"`)
  const level = (/^#+/.exec(lines[start] ?? '') ?? [''])[0].length
  const rest = lines.slice(start + 1)
  const end = rest.findIndex((l) => { const m = /^(#+) /.exec(l); return m !== null && (m[1] ?? '').length <= level })
  return (end === -1 ? rest : rest.slice(0, end)).join('\n')
}

/** The body rows of the first markdown table in `text`, as trimmed cells (`\|` is a literal bar). */
function tableRows (text: string): string[][] {
  const lines = text.split('\n')
  const first = lines.findIndex((l) => l.startsWith('|'))
  if (first === -1) throw new Error('no table')
  const rows: string[][] = []
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break
    rows.push(line.replace(/\\\|/g, '\uE000').split('|').slice(1, -1).map((c) => c.replace(/\uE000/g, '|').trim()))
  }
  return rows
}

const unquote = (cell: string): string => cell.replace(/`/g, '').trim()

t.test('error codes', async (t) => {
  t.test('docs/rest.md lists every code of ERROR_CODES with its HTTP status, and no other', async (t) => {
    const rows = tableRows(section(readDoc('rest.md'), 'Error codes'))
    const documented = new Map(rows.map((r) => [unquote(r[0] ?? ''), Number(r[1])]))
    t.same([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort(), 'the same codes')
    for (const [code, { status }] of Object.entries(ERROR_CODES)) {
      t.equal(documented.get(code), status, `${code} is documented with ${status}`)
    }
    for (const row of rows) t.ok((row[3] ?? '').length > 20, `${row[0] ?? ''} says what it means`)
  })

  // Statuses the docs pair with a code other than the code's own; each is checked against the app below.
  const otherStatuses = new Set(['415 VALIDATION_FAILED'])
  const warningCodes = new Set([String((EventData.warning as unknown as { properties: { code: { const: string } } }).properties.code.const)])

  t.test('every code the pages name exists, with the status they give it', async (t) => {
    let pairs = 0
    for (const { name, text } of pages()) {
      for (const m of text.matchAll(/\b([1-5]\d\d) `([A-Z][A-Z_]+)`/g)) {
        const [, status, code] = m as unknown as [string, string, string]
        pairs++
        t.ok(Object.hasOwn(ERROR_CODES, code), `${name}: ${code} is an error code`)
        const own = ERROR_CODES[code as keyof typeof ERROR_CODES]?.status
        if (own !== undefined && own !== Number(status)) {
          t.ok(otherStatuses.has(`${status} ${code}`), `${name}: "${status} ${code}" (its own status is ${own})`)
        }
      }
      // Codes named as a code: `error` `X`, code:"X", "code":"X", `error {code: X}`.
      for (const m of text.matchAll(/(?:`error` `|code"?\s*:\s*"|\{code: ?)([A-Z][A-Z_]+)/g)) {
        const code = m[1] ?? ''
        t.ok(Object.hasOwn(ERROR_CODES, code) || warningCodes.has(code), `${name}: ${code} is an error (or warning) code`)
      }
    }
    t.ok(pairs > 10, `the pages pair statuses with codes (${pairs} found)`)
  })

  t.test('the statuses docs/rest.md gives besides a code\'s own are what the app answers', async (t) => {
    const { app } = await createTestApp(t)
    const asXml = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice', 'content-type': 'application/xml' }, payload: '<name>Friday movie</name>' })
    t.equal(asXml.statusCode, 415, 'a content type the server does not parse is 415')
    t.equal(asXml.json().code, 'VALIDATION_FAILED')
    t.ok(otherStatuses.has(`${asXml.statusCode} ${String(asXml.json().code)}`))
    const asText = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice', 'content-type': 'text/plain' }, payload: 'Friday movie' })
    t.equal(asText.statusCode, 400, 'text/plain is parsed, and is not a room')
    t.equal(asText.json().code, 'VALIDATION_FAILED')
    const notJson = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice', 'content-type': 'application/json' }, payload: '{"name":' })
    t.equal(notJson.statusCode, 400, 'a body that is not JSON is 400')
    t.equal(notJson.json().code, 'VALIDATION_FAILED')
    const large = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice', 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x'.repeat(20_000) }) })
    t.equal(large.statusCode, 413)
    t.equal(large.json().code, 'PAYLOAD_TOO_LARGE')
    const unknown = await app.inject({ method: 'GET', url: '/nowhere' })
    t.equal(unknown.statusCode, 404)
    t.equal(unknown.json().code, 'NOT_FOUND')
  })
})

/** Close codes that the `ws` library or the network produce, not the server's own CLOSE_CODES. */
const LIBRARY_CLOSE_CODES = new Set([1002, 1006, 1007, 1008])

t.test('close codes', async (t) => {
  const rows = tableRows(section(readDoc('websocket.md'), 'Closes'))
  const documented = new Map<number, string[]>()
  for (const row of rows) for (const code of (row[0] ?? '').split(',').map(Number)) documented.set(code, row)

  t.test('docs/websocket.md documents every close code the server sends, with what the client does', async (t) => {
    for (const [name, code] of Object.entries(CLOSE_CODES)) {
      const row = documented.get(code)
      t.ok(row, `${code} (${name}) has a row`)
      t.ok((row?.[1] ?? '').length > 10 && (row?.[2] ?? '').length > 10, `${code}: when, and what the client does`)
    }
    const server = new Set<number>(Object.values(CLOSE_CODES))
    for (const code of documented.keys()) {
      t.ok(server.has(code) || LIBRARY_CLOSE_CODES.has(code), `${code} is a close code of the server or of ws/the network`)
    }
    t.ok(documented.has(1007), 'invalid UTF-8 (1007) is documented')
  })

  t.test('every close code the pages mention is in that table', async (t) => {
    for (const { name, text } of pages()) {
      for (const m of text.matchAll(/\b(?:close|closed|closes|closing)(?: it)?(?: with(?: code)?)? \**(\d{4})\b/gi)) {
        t.ok(documented.has(Number(m[1])), `${name}: ${m[0]}`)
      }
    }
  })

  t.test('a connection beyond MAX_CONNECTIONS_PER_USER is closed with the code the table gives it', async (t) => {
    const row = rows.find((r) => (r[1] ?? '').includes('`MAX_CONNECTIONS_PER_USER`'))
    t.ok(row, 'the table says which code the per-user connection cap closes with')
    const { wsUrl } = await createTestApp(t, { listen: true, env: { MAX_CONNECTIONS_PER_USER: '1' } })
    await TestClient.connect(wsUrl, { userId: 'tabs' }, t)
    const extra = TestClient.open(wsUrl, { userId: 'tabs' })
    const closed = await extra.closed
    t.ok((row?.[0] ?? '').split(',').map(Number).includes(closed.code), `closed with ${closed.code}, the code of that row`)
  })

  t.test('the codes that come from ws are what a client gets', async (t) => {
    const { wsUrl } = await createTestApp(t, { listen: true })
    const client = await TestClient.connect(wsUrl, { userId: 'bytes' }, t)
    client.sendRaw(Buffer.from([0xc3, 0x28]), { binary: false })
    t.equal((await client.closed).code, 1007, 'a text frame of invalid UTF-8 closes with 1007')

    const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]) // a client frame must be masked
    t.equal(await rawCloseCode(wsUrl, unmasked), 1002, 'an unmasked frame closes with 1002')
    const fragments = [maskedFrame(0x01, false)]
    for (let i = 0; i < 16 * 1024; i++) fragments.push(maskedFrame(0x00, false))
    t.equal(await rawCloseCode(wsUrl, Buffer.concat(fragments)), 1008, 'more than 16,384 fragments of one message close with 1008')
  })
})

t.test('metrics: the names, types and labels the docs give are the ones GET /metrics serves', async (t) => {
  const { app, metrics } = await createTestApp(t)
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
  t.ok(types.has('errors_total') && !types.has('errors'), 'the error counter is errors_total (prom-client adds no suffix)')
  const ours = [...types.keys()].filter((n) => !n.startsWith('process_') && !n.startsWith('nodejs_'))
  const labels = new Map(metrics.registry.getMetricsAsArray().map((m) => [m.name, [...((m as unknown as { labelNames: string[] }).labelNames)].sort()]))

  const rows = tableRows(section(readDoc('operations.md'), 'Metrics'))
  const documented = new Map(rows.map((r) => [unquote(r[0] ?? ''), r]))
  t.same([...documented.keys()].sort(), ours.sort(), 'docs/operations.md lists every metric of the app, and no other')
  for (const [name, row] of documented) {
    t.equal(row[1], types.get(name), `${name} is a ${types.get(name) ?? '?'}`)
    const documentedLabels = (row[2] ?? '').split(',').map(unquote).filter((l) => l !== '').sort()
    t.same(documentedLabels, labels.get(name), `${name}'s labels`)
  }

  // Any metric named in prose: a backticked name ending like a metric, or followed by "metric".
  const served = new Set([...types.keys()].flatMap((n) => types.get(n) === 'histogram' ? [n, `${n}_bucket`, `${n}_sum`, `${n}_count`] : [n]))
  for (const { name, text: page } of pages()) {
    for (const m of page.matchAll(/`([a-z][a-z0-9_]*)`( metric)?/g)) {
      const token = m[1] ?? ''
      if (m[2] === undefined && !/_(total|seconds|bytes)$/.test(token)) continue
      t.ok(served.has(token), `${name}: \`${token}\` is a metric the app serves`)
    }
  }
})

type FieldSchema = TSchema & { type?: string, minLength?: number, maxLength?: number, minimum?: number, maximum?: number }
interface ObjectSchema { properties: Record<string, FieldSchema>, required?: string[] }
const handlerData = (key: keyof typeof HANDLERS): ObjectSchema => HANDLERS[key].data as unknown as ObjectSchema
const bounds = (s: FieldSchema): [number | undefined, number | undefined] =>
  s.type === 'string' ? [s.minLength, s.maxLength] : [s.minimum, s.maximum]
const num = (cell: string): number | undefined => {
  const text = unquote(cell).replace(/,/g, '')
  return text === '–' || text === '' ? undefined : Number(text)
}

t.test('requests: fields and limits', async (t) => {
  const page = readDoc('websocket.md')

  t.test('the field limits table gives each field the type and bounds of every schema that has it', async (t) => {
    const rows = tableRows(section(page, 'Field limits'))
    const documented = new Set<string>()
    for (const row of rows) {
      const field = unquote(row[0] ?? '')
      documented.add(field)
      const envelope = (RequestEnvelope as unknown as ObjectSchema).properties[field]
      const schemas = field === 'type' || field === 'id'
        ? (envelope === undefined ? [] : [envelope])
        : (Object.keys(HANDLERS) as Array<keyof typeof HANDLERS>).flatMap((k) => { const s = handlerData(k).properties[field]; return s === undefined ? [] : [s] })
      t.ok(schemas.length > 0, `${field} is a field of some request`)
      for (const schema of schemas) {
        t.equal(row[1], schema.type, `${field} is a ${schema.type ?? '?'}`)
        t.same([num(row[2] ?? ''), num(row[3] ?? '')], bounds(schema), `${field}'s bounds`)
      }
    }
    for (const key of Object.keys(HANDLERS) as Array<keyof typeof HANDLERS>) {
      for (const [field, schema] of Object.entries(handlerData(key).properties)) {
        const [min, max] = bounds(schema)
        if (min !== undefined || max !== undefined) t.ok(documented.has(field), `${key}.${field} is bounded, and its bounds are documented`)
      }
    }
    const currentTime = rows.find((r) => unquote(r[0] ?? '') === 'currentTime')
    const cap = (CurrentTime as unknown as FieldSchema).maximum
    t.equal(num(currentTime?.[3] ?? ''), cap, `currentTime's cap is ${String(cap)}, the maximum of the schema that validates it`)
  })

  const fieldsOf = (cell: string): string[] => {
    const braces = /`\{([^}]*)\}`/.exec(cell)?.[1]
    if (braces === undefined) throw new Error(`no {fields} in ${cell}`)
    return braces.split(',').map((f) => f.trim()).filter((f) => f !== '').sort()
  }
  const schemaFields = (key: keyof typeof HANDLERS): string[] => {
    const schema = handlerData(key)
    return Object.keys(schema.properties).map((f) => (schema.required ?? []).includes(f) ? f : `${f}?`).sort()
  }

  t.test('the requests table lists every request the server handles, with its fields', async (t) => {
    const rows = tableRows(section(page, 'Requests'))
    const documented = new Map(rows.map((r) => [unquote(r[0] ?? ''), r]))
    const served = (Object.keys(HANDLERS) as Array<keyof typeof HANDLERS>).filter((k) => !k.startsWith('legacy_'))
    t.same([...documented.keys()].sort(), [...served].sort(), 'the same request types')
    for (const key of served) t.same(fieldsOf(documented.get(key)?.[1] ?? '{}'), schemaFields(key), `${key}'s data`)
  })

  t.test('the legacy forms are documented as the code has them', async (t) => {
    const rows = tableRows(section(page, 'Legacy 1-on-1 channels (deprecated)'))
    const forms: Record<string, keyof typeof HANDLERS> = {
      'sync with chatId': 'legacy_sync',
      'chat with chatId': 'legacy_chat',
      'sync with roomId': 'host_sync'
    }
    t.same(rows.map((r) => unquote(r[0] ?? '')).sort(), Object.keys(forms).sort(), 'the three forms')
    for (const row of rows) {
      const key = forms[unquote(row[0] ?? '')]
      if (key !== undefined) t.same(fieldsOf(row[1] ?? ''), schemaFields(key), `${row[0] ?? ''}: ${key}'s data`)
    }
  })

  t.test('a sync carrying both chatId and roomId is the legacy relay (chatId wins), as documented', async (t) => {
    t.match(section(page, 'Legacy 1-on-1 channels (deprecated)'), /both `chatId` and `roomId`[^.]*`chatId` wins/)
    const { wsUrl } = await createTestApp(t, { listen: true })
    const alice = await TestClient.connect(wsUrl, { userId: 'alice' }, t)
    const bob = await TestClient.connect(wsUrl, { userId: 'bob' }, t)
    const roomId = (await alice.expect('create_room', { roomName: 'Friday movie' }, 'room_created')).data.room.id as string
    await bob.expect('join_room', { roomId }, 'room_joined')
    const chatId = 'sync-alice--bob'
    const ack = await alice.request('sync', { chatId, roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 12.5, isPlaying: true })
    t.equal(ack.type, 'ack')
    const relayed = await bob.nextOfType('sync')
    t.equal(relayed.channel, chatId, 'relayed on the 1-on-1 channel, not the room\'s')
    t.match(relayed.data, { chatId, currentTime: 12.5, playbackRate: 1 })
    const room = (await alice.expect('join_room', { roomId }, 'room_joined')).data.room as { currentVideo: unknown }
    t.equal(room.currentVideo, null, 'the room\'s playback state did not change')
  })
})

t.test('the machine-readable documents agree with the pages', async (t) => {
  const { app } = await createTestApp(t)

  t.test('every status the OpenAPI document gives a route is in docs/rest.md\'s row for it', async (t) => {
    const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
    const rows = tableRows(readDoc('rest.md'))
    let compared = 0
    for (const row of rows) {
      const call = /^`(GET|POST|PUT|PATCH|DELETE) ([^`?\s]+)/.exec(row[0] ?? '')
      if (call === null) continue
      const [, method, path] = call as unknown as [string, string, string]
      const operation = openapi.paths[path]?.[method.toLowerCase()]
      if (operation === undefined) continue // hidden routes (/openapi.json, /docs, /asyncapi.json)
      compared++
      const documented = new Set([...`${row[1] ?? ''} ${row[2] ?? ''}`.matchAll(/\b([1-5]\d\d)\b/g)].map((m) => m[1]))
      for (const status of Object.keys(operation.responses)) {
        t.ok(documented.has(status), `${method} ${path}: ${status} (in the OpenAPI document) is documented`)
      }
      const success = /^\*{0,2}(\d{3})/.exec(row[1] ?? '')?.[1]
      t.ok(success !== undefined && Object.hasOwn(operation.responses, success), `${method} ${path}: the documented success status ${success ?? '?'} is in the OpenAPI document`)
    }
    t.ok(compared >= 6, `the REST rows were matched to operations (${compared})`)
  })

  t.test('the AsyncAPI document has every request the pages list, and every close code of the server', async (t) => {
    const asyncapi = (await app.inject({ method: 'GET', url: '/asyncapi.json' })).json() as { info: { description: string }, components: { messages: Record<string, unknown> } }
    const page = readDoc('websocket.md')
    const types = [
      ...tableRows(section(page, 'Requests')).map((r) => unquote(r[0] ?? '')),
      ...tableRows(section(page, 'Legacy 1-on-1 channels (deprecated)')).map((r) => unquote((r[0] ?? '').split(' ')[0] ?? ''))
    ]
    for (const type of new Set(types)) t.ok(Object.hasOwn(asyncapi.components.messages, `request_${type}`), `request_${type}`)
    for (const code of Object.values(CLOSE_CODES)) t.match(asyncapi.info.description, String(code), `the AsyncAPI description names close code ${code}`)
  })
})

function maskedFrame (opcode: number, fin: boolean): Buffer {
  return Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80, 0, 0, 0, 0]) // empty payload, zero mask
}

/** Opens /ws by hand, sends `bytes` after the handshake, and resolves with the code of the server's close frame. */
async function rawCloseCode (wsUrl: string, bytes: Buffer): Promise<number> {
  const url = new URL(wsUrl)
  const socket: Socket = connect(Number(url.port), url.hostname)
  socket.write(`GET /ws?userId=raw HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let buffered = Buffer.alloc(0)
  let upgraded = false
  return await new Promise<number>((resolve, reject) => {
    socket.on('error', reject)
    socket.on('close', () => { reject(new Error('closed without a close frame')) })
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (!upgraded) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        if (!buffered.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101')) { reject(new Error('not upgraded')); return }
        upgraded = true
        buffered = buffered.subarray(end + 4)
        socket.write(bytes)
      }
      // Server frames are unmasked: skip each (e.g. `connected`) until the close frame.
      while (buffered.length >= 2) {
        const opcode = (buffered[0] ?? 0) & 0x0f
        let length = (buffered[1] ?? 0) & 0x7f
        let offset = 2
        if (length === 126) { if (buffered.length < 4) return; length = buffered.readUInt16BE(2); offset = 4 }
        if (length === 127) { if (buffered.length < 10) return; length = Number(buffered.readBigUInt64BE(2)); offset = 10 }
        if (buffered.length < offset + length) return
        if (opcode === 0x8) {
          resolve(buffered.readUInt16BE(offset))
          socket.destroy()
          return
        }
        buffered = buffered.subarray(offset + length)
      }
    })
  })
}
