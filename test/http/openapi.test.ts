/**
 * What /docs shows: every response described (none left as "Default Response"), error examples per status
 * with the codes that status carries, realistic Room examples, an operationId, summary and description on
 * every operation, a truthful server, and examples that are what the server really answers.
 */
import t from 'tap'
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js'
import { UUID_REGEX } from '../../src/rooms/shapes.js'
import { createTestApp } from '../helpers/app.js'

interface Media { schema?: { $ref?: string }, example?: unknown, examples?: Record<string, { summary?: string, value: unknown }> }
interface Operation {
  operationId?: string
  summary?: string
  description?: string
  security?: unknown[]
  responses: Record<string, { description: string, content?: Record<string, Media> }>
}

const { app } = await createTestApp(t, { env: { MAX_ROOMS_PER_HOST: '1' } })
const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
  info: { license?: { name: string }, description: string }
  servers: Array<{ url: string }>
  paths: Record<string, Record<string, Operation>>
}
const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({ name: `${method.toUpperCase()} ${path}`, operation })))

t.test('every operation has an operationId, a summary, a description and a declared security', async (t) => {
  const ids = operations.map(({ operation }) => operation.operationId)
  t.ok(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id)), `camelCase ids: ${ids.join(', ')}`)
  t.equal(new Set(ids).size, ids.length, 'unique')
  t.same(Object.fromEntries(operations.map(({ name, operation }) => [name, operation.operationId])), {
    'POST /rooms': 'createRoom',
    'GET /rooms': 'listRooms',
    'GET /rooms/{roomId}': 'getRoom',
    'DELETE /rooms/{roomId}': 'closeRoom',
    'GET /healthz': 'getLiveness',
    'GET /readyz': 'getReadiness',
    'GET /metrics': 'getMetrics'
  })
  for (const { name, operation } of operations) {
    t.ok((operation.summary ?? '').length > 10, `${name} has a summary`)
    t.ok((operation.description ?? '').length > 10, `${name} has a description`)
    t.ok(Array.isArray(operation.security), `${name} declares its security`)
  }
})

t.test('no response is left as "Default Response"', async (t) => {
  for (const { name, operation } of operations) {
    for (const [status, response] of Object.entries(operation.responses)) {
      t.not(response.description, 'Default Response', `${name} ${status}`)
      t.ok(response.description.length > 10, `${name} ${status} says what it means: ${response.description}`)
    }
  }
})

t.test('each error response has examples, each with a code that answers with that status', async (t) => {
  let count = 0
  for (const { name, operation } of operations) {
    for (const [status, response] of Object.entries(operation.responses)) {
      if (Number(status) < 400) continue
      const media = response.content?.['application/json']
      t.equal(media?.schema?.$ref, '#/components/schemas/ErrorResponse', `${name} ${status} is an ErrorResponse`)
      const examples = Object.entries(media?.examples ?? {})
      t.ok(examples.length > 0, `${name} ${status} has examples`)
      for (const [key, { value }] of examples) {
        const body = value as { code: ErrorCode, error: string, message: string }
        count++
        t.ok(key === body.code || key.startsWith(`${body.code}_`), `${name} ${status}: the example ${key} is named by its code`)
        // Fastify chooses 415 itself; the body says VALIDATION_FAILED with the 415 title.
        if (Number(status) === 415) t.equal(body.code, 'VALIDATION_FAILED', `${name} 415 is VALIDATION_FAILED`)
        else t.equal(ERROR_CODES[body.code].status, Number(status), `${name} ${status}: ${body.code} answers with ${ERROR_CODES[body.code].status}`)
        t.equal(body.error, Number(status) === 415 ? 'Unsupported Media Type' : ERROR_CODES[body.code].title)
      }
    }
  }
  t.ok(count >= 20, `${count} error examples`)
  const codes = new Set(operations.flatMap(({ operation }) => Object.values(operation.responses)
    .flatMap((r) => Object.values(r.content?.['application/json']?.examples ?? {}).map((e) => (e.value as { code?: string }).code))))
  codes.delete(undefined)
  t.ok(codes.size >= 8, `not one code for all: ${[...codes].join(', ')}`)
})

t.test('the Room examples look like real rooms', async (t) => {
  const room = document.paths['/rooms/{roomId}']?.get?.responses['200']?.content?.['application/json']
  const value = Object.values(room?.examples ?? {})[0]?.value as Record<string, unknown> & { currentVideo: { videoUrl: string, roomId: string } }
  t.match(value.id, UUID_REGEX, 'a UUID id')
  t.equal(value.hostId, 'alice')
  t.match(value.name, /^[A-Z][a-z]+( [a-z]+)+$/, 'a name a person would give')
  t.ok(Number.isFinite(Date.parse(value.createdAt as string)), 'a real timestamp')
  t.match(value.currentVideo.videoUrl, /^https:\/\/[a-z.]+\/[\w./-]+\.mp4$/, 'an https video URL')
  t.equal(value.currentVideo.roomId, value.id)
  const created = document.paths['/rooms']?.post?.responses['201']?.content?.['application/json']
  t.match(Object.values(created?.examples ?? {})[0]?.value, { hostId: 'alice', participants: [], currentVideo: null, isActive: true })
})

t.test('the document is honest about where it is served and under which license', async (t) => {
  t.same(document.servers.map((s) => s.url), ['/'], 'relative: true behind any host, port or proxy')
  t.equal(document.info.license?.name, 'MIT')
  t.match(document.info.description, /\(\/docs\/websocket\)/, 'links the WebSocket page')
})

t.test('the documented error examples are what the server answers', async (t) => {
  const example = (path: string, method: string, status: number, code: string): { error: string, message: string, code: string } => {
    const media = document.paths[path]?.[method]?.responses[String(status)]?.content?.['application/json']
    return media?.examples?.[code]?.value as { error: string, message: string, code: string }
  }
  const alice = { 'x-user-id': 'alice' }
  const answers: Array<[string, string, number, string, Awaited<ReturnType<typeof app.inject>>]> = [
    ['/rooms', 'post', 400, 'VALIDATION_FAILED', await app.inject({ method: 'POST', url: '/rooms', headers: alice, payload: {} })],
    ['/rooms', 'post', 401, 'UNAUTHORIZED_DEVELOPMENT', await app.inject({ method: 'POST', url: '/rooms', payload: { name: 'x' } })],
    ['/rooms', 'get', 400, 'VALIDATION_FAILED', await app.inject({ method: 'GET', url: '/rooms?limit=101', headers: alice })],
    ['/rooms/{roomId}', 'get', 400, 'INVALID_ROOM_ID', await app.inject({ method: 'GET', url: '/rooms/not-a-uuid', headers: alice })],
    ['/rooms/{roomId}', 'get', 404, 'ROOM_NOT_FOUND', await app.inject({ method: 'GET', url: '/rooms/3f0c2d9e-8c1a-4b7e-9f3a-2d1c0b9a8e7f', headers: alice })],
    ['/healthz', 'get', 400, 'VALIDATION_FAILED', await app.inject({ method: 'GET', url: '/healthz?verbose=1' })]
  ]
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: alice, payload: { name: 'Friday movie night' } })
  answers.push(['/rooms', 'post', 429, 'ROOM_LIMIT_REACHED', await app.inject({ method: 'POST', url: '/rooms', headers: alice, payload: { name: 'Another' } })])
  answers.push(['/rooms/{roomId}', 'delete', 403, 'NOT_HOST', await app.inject({ method: 'DELETE', url: `/rooms/${created.json().id as string}`, headers: { 'x-user-id': 'bob' } })])
  for (const [path, method, status, code, res] of answers) {
    const documented = example(path, method, status, code)
    t.equal(res.statusCode, status, `${method.toUpperCase()} ${path} answers ${status}`)
    t.equal(res.json().code, code.split('_DEVELOPMENT')[0])
    t.equal(documented.error, res.json().error, 'same title')
    // Messages name the room, the user or a limit: compare them with those parts blanked out.
    const shape = (m: string): string => m.replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, '<id>').replace(/\d+/g, '<n>')
    t.equal(shape(documented.message), shape(res.json().message), `${code}: the documented message is the real one`)
  }
})
