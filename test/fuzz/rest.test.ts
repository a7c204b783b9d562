/**
 * Property-based fuzzing of the REST API (fast-check): arbitrary JSON, text and bytes as POST /rooms bodies,
 * arbitrary path segments, query strings and x-user-id values. Whatever arrives:
 * - the process keeps answering (/healthz after every request) and never answers 5xx (the database is up);
 * - every error body is exactly {error, message, code} with a code of src/errors.ts;
 * - every status is one the OpenAPI document lists for the route;
 * - rejected input changes nothing: only a 201 adds a room, and only for a create that is valid by the contract;
 * - where the contract names the answer (bad or unknown room ids, bad identities, valid creates), it is that answer.
 *
 * Each concern is its own fast-check property, so a counterexample to one does not hide the others.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import t from 'tap'
import { ERROR_CODE_NAMES, ERROR_CODES } from '../../src/errors.js'
import { USER_ID_REGEX, UUID_REGEX } from '../../src/rooms/shapes.js'
import { createTestApp } from '../helpers/app.js'
import { anyJsonOf, anyString } from '../helpers/arbitraries.js'

/**
 * Runs per property, sized for a loaded CI box; FUZZ_SCALE=10 (say) fuzzes ten times longer. The state property
 * costs three requests a run, so it gets fewer.
 */
const SCALE = Number(process.env.FUZZ_SCALE ?? '1')
const NUM_RUNS = Math.ceil(40 * SCALE)
const STATE_RUNS = Math.ceil(20 * SCALE)
const MAX_SHRINKS = 100
const PAGE = 20

const { app, rooms } = await createTestApp(t, {
  env: { REST_RATE_LIMIT_PER_MINUTE: '1000000', MAX_ROOMS_PER_HOST: '100000' }
})

// Who does what: the owner hosts the first room; the creator makes rooms; the intruder hosts nothing, ever.
const OWNER = 'owner'
const CREATOR = 'creator'
const OBSERVER = 'observer'
const INTRUDER = 'intruder'

interface Call {
  method: 'GET' | 'POST' | 'DELETE'
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

interface Answer {
  status: number
  contentType: string | undefined
  body: string
}

const first = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': OWNER }, payload: { name: 'the first room' } })
assert.equal(first.statusCode, 201)
const firstRoomId = (first.json() as { id: string }).id
/** Every room id handed out so far (lower case, as the server generates them). */
const knownRoomIds = new Set<string>([firstRoomId])

// ---- the contract's documentation ----

interface OpenApi { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> }
const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as OpenApi

/** The statuses the OpenAPI document lists for one operation. */
function documentedStatuses (method: string, path: string): Set<number> {
  const operation = openapi.paths[path]?.[method.toLowerCase()]
  assert.ok(operation !== undefined, `the OpenAPI document has ${method} ${path}`)
  return new Set(Object.keys(operation.responses ?? {}).map(Number))
}

/** The OpenAPI path a call addresses; every generated call addresses one of the room routes. */
function routeOf (call: Call): string {
  const path = call.url.split('?')[0] ?? ''
  if (path === '/rooms') return '/rooms'
  assert.ok(path.startsWith('/rooms/') && !path.slice('/rooms/'.length).includes('/'), `generator bug: ${path}`)
  return '/rooms/{roomId}'
}

// ---- what is observed around each call ----

interface Snapshot {
  openRooms: number
  firstPage: string[]
  firstRoom: unknown
}

async function snapshot (): Promise<Snapshot> {
  const page = await app.inject({ method: 'GET', url: `/rooms?limit=${PAGE}`, headers: { 'x-user-id': OBSERVER } })
  assert.equal(page.statusCode, 200, `GET /rooms answers: ${page.body}`)
  const firstRoom = await app.inject({ method: 'GET', url: `/rooms/${firstRoomId}`, headers: { 'x-user-id': OBSERVER } })
  assert.equal(firstRoom.statusCode, 200, `GET /rooms/{first} answers: ${firstRoom.body}`)
  return {
    openRooms: rooms.openRoomCount,
    firstPage: (page.json() as { rooms: Array<{ id: string }> }).rooms.map((r) => r.id),
    firstRoom: firstRoom.json()
  }
}

async function send (call: Call): Promise<Answer> {
  const res = await app.inject({ method: call.method, url: call.url, headers: call.headers, ...(call.payload === undefined ? {} : { payload: call.payload }) })
  const contentType = res.headers['content-type']
  const answer = { status: res.statusCode, contentType: typeof contentType === 'string' ? contentType : undefined, body: res.body }
  if (answer.status === 201) knownRoomIds.add((JSON.parse(answer.body) as { id: string }).id)
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  assert.equal(health.statusCode, 200, 'the app still answers /healthz')
  return answer
}

// ---- the oracle: what the contract says a call must get ----

const codePoints = (s: string): number => [...s].length
/** Postgres text cannot hold these; refusing them with 400 is as good as storing them. */
const unstorable = (s: string): boolean => s.includes('\u0000') || /\p{Cs}/u.test(s)

/**
 * A create the contract accepts: `{"name": 1-100 characters, not only white space, no control or format
 * character (1.1)}` as JSON, with a valid user.
 */
function validCreate (call: Call): { name: string, storable: boolean, strictJson: boolean } | undefined {
  if (call.method !== 'POST' || call.url !== '/rooms') return undefined
  if (!USER_ID_REGEX.test(call.headers['x-user-id'] ?? '')) return undefined
  const contentType = call.headers['content-type']
  if (contentType === undefined || contentType.split(';')[0]?.trim().toLowerCase() !== 'application/json') return undefined
  let body: unknown
  try {
    // What the server reads: a string payload goes out as UTF-8 (lone surrogates become U+FFFD).
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(call.payload ?? '')))
  } catch {
    return undefined
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const keys = Object.keys(body)
  const name = (body as { name?: unknown }).name
  if (keys.length !== 1 || keys[0] !== 'name' || typeof name !== 'string') return undefined
  if (codePoints(name) < 1 || codePoints(name) > 100 || !/\S/u.test(name)) return undefined
  if (/[\p{Cc}\p{Cf}]/u.test(name)) return undefined
  const strictJson = contentType === 'application/json' || contentType === 'application/json; charset=utf-8'
  return { name, storable: !unstorable(name), strictJson }
}

/** What the contract names as the answer, when it names one: [status, code] or 'ok'. */
function expectedAnswer (call: Call): { status: number, code?: string } | undefined {
  const path = call.url.split('?')[0] ?? ''
  const user = call.headers['x-user-id'] ?? ''
  if (!USER_ID_REGEX.test(user)) return { status: 401, code: 'UNAUTHORIZED' }
  if (path.startsWith('/rooms/') && (call.method === 'GET' || call.method === 'DELETE')) {
    let roomId: string
    try {
      roomId = decodeURIComponent(path.slice('/rooms/'.length))
    } catch {
      return undefined // not a valid URL component: the contract only says 400
    }
    if (!UUID_REGEX.test(roomId)) return { status: 400, code: 'INVALID_ROOM_ID' }
    const known = knownRoomIds.has(roomId.toLowerCase())
    if (!known) return { status: 404, code: 'ROOM_NOT_FOUND' }
    if (call.method === 'GET') return { status: 200 }
    return user === INTRUDER ? { status: 403, code: 'NOT_HOST' } : undefined
  }
  return undefined
}

// ---- the invariants, one property each ----

type Invariant = (call: Call, answer: Answer, before: Snapshot | undefined, after: Snapshot | undefined) => void

function assertErrorBody (answer: Answer): void {
  assert.match(answer.contentType ?? '', /^application\/json/, `an error answer is JSON (content-type ${String(answer.contentType)})`)
  const body = JSON.parse(answer.body) as Record<string, unknown>
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'message'], `the error body is exactly {error, message, code}: ${answer.body}`)
  assert.equal(typeof body.error, 'string')
  assert.equal(typeof body.message, 'string')
  assert.ok((ERROR_CODE_NAMES as string[]).includes(body.code as string), `code ${String(body.code)} is one of src/errors.ts`)
}

const INVARIANTS: Record<string, { needsSnapshot: boolean, check: Invariant }> = {
  'never answers 5xx (the database is up)': {
    needsSnapshot: false,
    check: (_call, answer) => { assert.ok(answer.status < 500, `answered ${answer.status}: ${answer.body}`) }
  },
  'every error body is exactly {error, message, code} with a code of src/errors.ts': {
    needsSnapshot: false,
    check: (_call, answer) => { if (answer.status >= 400) assertErrorBody(answer) }
  },
  'every status is one the OpenAPI document lists for the route': {
    needsSnapshot: false,
    check: (call, answer) => {
      const documented = documentedStatuses(call.method, routeOf(call))
      assert.ok(documented.has(answer.status), `${call.method} ${routeOf(call)} answered ${answer.status}, documented: ${[...documented].join(', ')}; body ${answer.body}`)
    }
  },
  'rejected input changes nothing; only a valid create adds a room': {
    needsSnapshot: true,
    check: (call, answer, before, after) => {
      assert.ok(before !== undefined && after !== undefined)
      const valid = validCreate(call)
      if (answer.status === 201) {
        assert.ok(valid !== undefined, `201 for a create the contract refuses: ${answer.body}`)
        const room = JSON.parse(answer.body) as Record<string, unknown>
        assert.equal(room.name, valid.name)
        assert.equal(room.hostId, call.headers['x-user-id'])
        assert.deepEqual(room.participants, [])
        assert.equal(room.isActive, true)
        assert.equal(room.currentVideo, null)
        assert.equal(after.openRooms, before.openRooms + 1, 'a 201 adds exactly one open room')
        assert.deepEqual(after.firstPage, [room.id, ...before.firstPage].slice(0, PAGE), 'the new room lists first, the others unchanged')
        assert.deepEqual(after.firstRoom, before.firstRoom, 'the first room is unchanged')
        return
      }
      if (valid?.strictJson === true && valid.storable) assert.fail(`a valid create answered ${answer.status}: ${answer.body}`)
      if (valid?.strictJson === true && !valid.storable) {
        assert.ok(answer.status === 400, `a name Postgres cannot store must be refused with 400, got ${answer.status}: ${answer.body}`)
      }
      assert.deepEqual(after, before, `answered ${answer.status} and the rooms changed`)
    }
  },
  'answers what the contract names for identities and room ids': {
    needsSnapshot: false,
    check: (call, answer) => {
      const expected = expectedAnswer(call)
      if (expected === undefined) return
      const body = answer.status >= 400 ? (JSON.parse(answer.body) as { code?: string }) : {}
      assert.equal(answer.status, expected.status, `expected ${expected.status} ${expected.code ?? ''}; got ${answer.status}: ${answer.body}`)
      if (expected.code !== undefined) {
        assert.equal(body.code, expected.code)
        assert.equal(ERROR_CODES[expected.code as keyof typeof ERROR_CODES].status, answer.status)
      }
    }
  }
}

/**
 * One fast-check property per invariant over `calls`. `examples` (minimal counterexamples found earlier) run first
 * in every property, so a known failure fails every time until it is fixed.
 */
function fuzz (title: string, arbitrary: fc.Arbitrary<Call>, examples: Call[] = [], invariants: string[] = Object.keys(INVARIANTS)): void {
  const calls = fc.limitShrink(arbitrary, MAX_SHRINKS)
  t.test(title, async (t) => {
    for (const name of invariants) {
      const { needsSnapshot, check } = INVARIANTS[name]!
      const numRuns = needsSnapshot ? STATE_RUNS : NUM_RUNS
      await t.test(name, async (t) => {
        await fc.assert(fc.asyncProperty(calls, async (call) => {
          const before = needsSnapshot ? await snapshot() : undefined
          const answer = await send(call)
          const after = needsSnapshot ? await snapshot() : undefined
          check(call, answer, before, after)
        }), { numRuns, examples: examples.map((call): [Call] => [call]) })
        t.pass(`${numRuns} runs`)
      })
    }
  })
}

// ---- generators ----

const anyJson = anyJsonOf(4)
/** JSON text of a value (lone surrogates come out as \uD800 escapes, so the server parses them back). */
const serialize = (value: unknown): string => JSON.stringify(value) ?? 'null'

/** Names around the contract's edges: lengths 0/1/100/101, white space only, NUL, lone surrogates, astral. */
const nameLike = fc.oneof(
  anyString({ maxLength: 120 }),
  fc.constantFrom('', ' ', '\t\n', '\u00a0', '\ufeff', 'a', 'x'.repeat(100), 'x'.repeat(101), '😀'.repeat(100), '😀'.repeat(101), 'a\u0000b', '\ud800', 'a\udfff', '\u200b'),
  anyJson
)
const nearValidBody = fc.oneof(
  fc.record({ name: nameLike }),
  fc.record({ name: nameLike, extra: anyJson }),
  fc.record({ roomName: nameLike }),
  fc.dictionary(fc.constantFrom('name', 'Name', '__proto__', 'constructor', ''), anyJson, { maxKeys: 3 })
)

const contentTypes = fc.oneof(
  fc.constant(undefined),
  fc.constant('application/json'),
  fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=latin1', 'APPLICATION/JSON', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/octet-stream', ''),
  anyString({ maxLength: 40 })
)

const postBodies = fc.oneof(
  anyJson.map(serialize),
  nearValidBody.map(serialize),
  anyString({ maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom('', '{', '{"name":', '{"name":"a"', '{"name":"a"}}', '{"name":"a",}', '{"name":"\\u0000"}', '{"name":"\\ud800"}', '{"__proto__":{"name":"a"}}', '{"name":"a","name":"b"}', '[{"name":"a"}]', 'null', '1e999', '"name"')
)

const postCalls: fc.Arbitrary<Call> = fc.record({
  payload: postBodies,
  contentType: contentTypes
}).map(({ payload, contentType }) => ({
  method: 'POST' as const,
  url: '/rooms',
  headers: { 'x-user-id': CREATOR, ...(contentType === undefined ? {} : { 'content-type': contentType }) },
  payload
}))

const jsonPostCalls: fc.Arbitrary<Call> = fc.oneof(anyJson, nearValidBody).map((body) => ({
  method: 'POST' as const,
  url: '/rooms',
  headers: { 'x-user-id': CREATOR, 'content-type': 'application/json' },
  payload: serialize(body)
}))

/** Strings as the URL parser would carry them: lone surrogates become U+FFFD. */
const wellFormed = (s: string): string => Buffer.from(s, 'utf8').toString('utf8')
const roomIdLike = fc.oneof(
  anyString({ maxLength: 60 }).map(wellFormed).filter((s) => s !== '.' && s !== '..'),
  fc.uuid(),
  fc.uuid().map((id) => id.toUpperCase()),
  // Dot segments are left out: every URL parser (light-my-request's included) resolves them before sending.
  fc.constantFrom(firstRoomId, firstRoomId.toUpperCase(), ` ${firstRoomId}`, `${firstRoomId} `, `${firstRoomId}x`, firstRoomId.slice(1), `urn:uuid:${firstRoomId}`, `{${firstRoomId}}`, firstRoomId.replaceAll('-', ''),
    '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '...', '%', '__proto__', 'constructor', 'hasOwnProperty', 'null', 'undefined', '0', '-1', 'x'.repeat(100), 'x'.repeat(101), 'x'.repeat(2048), 'x'.repeat(2049), 'x'.repeat(5000))
)
/** Raw path text (not encoded): stray %, bad escapes, escaped invalid UTF-8; never /, ?, # or dot segments. */
const rawSegment = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40, unit: fc.constantFrom('%', '%', 'a', 'F', '0', '9', 'g', '-', 'é', '😀', '+', '~', '%2', '%2F', '%00', '%C0%AF', '%E0%A4%A', '%ZZ', '%25') }),
  fc.uint8Array({ minLength: 1, maxLength: 20 }).map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''))
).filter((s) => s !== '.' && s !== '..' && s !== '%2e' && s !== '%2E')

const roomCalls = (method: 'GET' | 'DELETE', user: string, segment: fc.Arbitrary<string>): fc.Arbitrary<Call> =>
  segment.map((s) => ({ method, url: `/rooms/${s}`, headers: { 'x-user-id': user } }))

/** Cursors shaped like the ones the server hands out: base64url of [epoch ms, room id]. */
const serverShapedCursor = fc.tuple(
  fc.oneof(fc.maxSafeInteger(), fc.double(), fc.integer({ min: 8.64e15 - 2, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, -1, 253402300799999, 253402300800000, 8.64e15, 8.64e15 + 1, Number.MAX_SAFE_INTEGER, 1e300)),
  fc.oneof(fc.uuid(), fc.constant(firstRoomId), anyString({ maxLength: 40 }))
).map((pair) => Buffer.from(serialize(pair)).toString('base64url'))
const cursorLike = fc.oneof(
  anyString({ maxLength: 80 }),
  fc.base64String({ maxLength: 80 }),
  anyJson.map((v) => Buffer.from(serialize(v)).toString('base64url')),
  serverShapedCursor
)
const limitLike = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.constantFrom('0', '1', '100', '101', '-1', '1.5', '1e2', '0x10', ' 5', '', ' ', '20 ', '+3', '00', '９'),
  anyString({ maxLength: 12 })
)
/** Query strings built by URLSearchParams (well formed) or typed raw (stray %, &, =, duplicates). */
const listQueries = fc.oneof(
  fc.record({ limit: fc.option(limitLike, { nil: undefined }), cursor: fc.option(cursorLike, { nil: undefined }), extra: fc.option(fc.tuple(anyString({ maxLength: 10 }), anyString({ maxLength: 10 })), { nil: undefined }) })
    .map(({ limit, cursor, extra }) => {
      const params = new URLSearchParams()
      if (limit !== undefined) params.append('limit', wellFormed(limit))
      if (cursor !== undefined) params.append('cursor', wellFormed(cursor))
      if (extra !== undefined) params.append(wellFormed(extra[0]), wellFormed(extra[1]))
      return params.toString()
    }),
  fc.array(fc.tuple(fc.constantFrom('limit', 'cursor', 'limit[]', 'cursor[0]', '__proto__', 'limit.x'), fc.oneof(limitLike, cursorLike).map(wellFormed)), { maxLength: 3 })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')),
  fc.string({ maxLength: 40, unit: fc.constantFrom('limit', 'cursor', '=', '&', '%', '%2', '%ZZ', '1', '0', '-', 'a', '+', ';', '[', ']') })
)

const userIdLike = fc.oneof(
  anyString({ maxLength: 140 }),
  fc.stringMatching(/^[A-Za-z0-9_.@:-]{1,140}$/),
  fc.constantFrom('', ' ', 'a'.repeat(128), 'a'.repeat(129), ' alice', 'alice ', 'al ice', 'alice\n', 'álice', '😀', 'a,b', '__proto__')
).filter((id) => id !== OWNER && id !== INTRUDER)

// ---- the properties ----

/** Counterexamples the fuzzers found (see the report in the commit message). */
const createWith = (payload: string, contentType?: string): Call =>
  ({ method: 'POST', url: '/rooms', headers: { 'x-user-id': CREATOR, ...(contentType === undefined ? {} : { 'content-type': contentType }) }, payload })
const FOUND = {
  /** Postgres text cannot hold NUL or an unpaired surrogate: answered 503 while the database is up. */
  nulName: createWith('{"name":"a\\u0000b"}', 'application/json'),
  loneSurrogateName: createWith('{"name":"\\ud800"}', 'application/json'),
  /** A body without a JSON content type: 415, which the OpenAPI document does not list for POST /rooms. */
  noContentType: createWith('[]'),
  /** Past the router's maxParamLength: 414 with Fastify's own body {error, code: FST_ERR_MAX_PARAM_LENGTH, message, statusCode}. */
  longRoomId: { method: 'GET', url: `/rooms/${'x'.repeat(2049)}`, headers: { 'x-user-id': OBSERVER } } satisfies Call,
  longRoomIdDelete: { method: 'DELETE', url: `/rooms/${'x'.repeat(2049)}`, headers: { 'x-user-id': INTRUDER } } satisfies Call,
  /** An escape that is not UTF-8: 400 with Fastify's own body (code FST_ERR_BAD_URL, plus statusCode). */
  badEscape: { method: 'GET', url: '/rooms/%80', headers: { 'x-user-id': OBSERVER } } satisfies Call,
  /** A cursor past the year 9999: the database cannot take the date; 503 while it is up. */
  farCursor: {
    method: 'GET',
    url: `/rooms?cursor=${Buffer.from(JSON.stringify([253402300800000, '00000000-0000-4000-8000-000000000000'])).toString('base64url')}`,
    headers: { 'x-user-id': OBSERVER }
  } satisfies Call
}

fuzz('POST /rooms with arbitrary JSON values as application/json', jsonPostCalls, [FOUND.nulName, FOUND.loneSurrogateName])
fuzz('POST /rooms with arbitrary text and bytes, with and without a JSON content type', postCalls, [FOUND.noContentType, FOUND.nulName])
fuzz('GET /rooms/{x} with arbitrary room ids (encoded)', roomCalls('GET', OBSERVER, roomIdLike.map(encodeURIComponent)), [FOUND.longRoomId])
fuzz('DELETE /rooms/{x} by a non-host with arbitrary room ids (encoded)', roomCalls('DELETE', INTRUDER, roomIdLike.map(encodeURIComponent)), [FOUND.longRoomIdDelete])
fuzz('GET and DELETE /rooms/{x} with raw path text (bad escapes, invalid UTF-8)', fc.oneof(
  roomCalls('GET', OBSERVER, rawSegment),
  roomCalls('DELETE', INTRUDER, rawSegment)
), [FOUND.badEscape])
fuzz('GET /rooms with arbitrary limit and cursor', listQueries.map((query) => ({
  method: 'GET' as const,
  url: query === '' ? '/rooms' : `/rooms?${query}`,
  headers: { 'x-user-id': OBSERVER }
})))
fuzz('GET /rooms with cursors shaped like the server\'s', serverShapedCursor.map((cursor) => ({
  method: 'GET' as const,
  url: `/rooms?cursor=${cursor}`,
  headers: { 'x-user-id': OBSERVER }
})), [FOUND.farCursor])
fuzz('arbitrary x-user-id values on GET /rooms, POST /rooms and GET /rooms/{id}', fc.tuple(userIdLike, fc.constantFrom('list', 'create', 'get')).map(([user, what]): Call => {
  if (what === 'list') return { method: 'GET', url: '/rooms', headers: { 'x-user-id': user } }
  if (what === 'get') return { method: 'GET', url: `/rooms/${firstRoomId}`, headers: { 'x-user-id': user } }
  return { method: 'POST', url: '/rooms', headers: { 'x-user-id': user, 'content-type': 'application/json' }, payload: '{"name":"fuzzed identity"}' }
}))
