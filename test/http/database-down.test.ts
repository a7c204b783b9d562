import t from 'tap'
import { createTestApp } from '../helpers/app.js'

// The database handle is closed halfway through this file, so it gets an app of its own.
const { app, database } = await createTestApp(t)

const GENERIC_503 = {
  error: 'Service Unavailable',
  message: 'the database is unavailable; nothing was changed, try again shortly',
  code: 'SERVICE_UNAVAILABLE'
}

/** What must never reach a client: driver messages, SQL, stack frames, file paths. */
const LEAKS = /select|insert|update|from "|rooms"|pool|pglite|postgres|econn|\bat \w|\.ts:|\.js:|node_modules|stack/i

// A second app on the same database whose identity step throws a raw error full of internals.
const { app: broken } = await createTestApp(t, {
  database,
  deps: {
    identity: {
      mode: 'development',
      async resolve () { throw new Error('select secret from users where id = $1 (at /srv/app/src/db.ts:12)') },
      async verifyToken () { throw new Error('unused') }
    }
  }
})

let existingId = ''

t.test('while the database answers', async (t) => {
  const existing = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice' }, payload: { name: 'Before the outage' } })
  t.equal(existing.statusCode, 201, 'a room exists before the database goes away')
  existingId = existing.json().id
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready')
  await database.handle.close()
})

t.test('GET /readyz is 503 SERVICE_UNAVAILABLE once the database does not answer', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message'])
  t.match(res.json(), { error: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE' })
  t.notMatch(res.body, LEAKS)
})

t.test('GET /healthz still answers 200: the process runs', async (t) => {
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('POST /rooms is 503 with the generic message and no stack or SQL', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'bob' }, payload: { name: 'During the outage' } })
  t.equal(res.statusCode, 503)
  t.same(res.json(), GENERIC_503)
  t.notMatch(res.body, LEAKS)
})

t.test('GET /rooms and GET /rooms/{id} of a room not in memory are 503 too', async (t) => {
  for (const url of ['/rooms', '/rooms/00000000-0000-4000-8000-000000000000']) {
    const res = await app.inject({ method: 'GET', url, headers: { 'x-user-id': 'bob' } })
    t.equal(res.statusCode, 503, url)
    t.same(res.json(), GENERIC_503)
  }
})

t.test('DELETE is 503 and the room stays open in memory', async (t) => {
  const id = existingId
  const res = await app.inject({ method: 'DELETE', url: `/rooms/${id}`, headers: { 'x-user-id': 'alice' } })
  t.equal(res.statusCode, 503)
  t.same(res.json(), GENERIC_503)
  const read = await app.inject({ method: 'GET', url: `/rooms/${id}`, headers: { 'x-user-id': 'alice' } })
  t.equal(read.statusCode, 200, 'a live room is served from memory')
  t.equal(read.json().isActive, true, 'nothing was changed')
})

t.test('the outage is counted in the metrics', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(res.body, /^errors_total\{[^}]*code="SERVICE_UNAVAILABLE"[^}]*\} [1-9]/m)
})

t.test('an unexpected error is 500 INTERNAL_ERROR and says nothing of its cause', async (t) => {
  const res = await broken.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'carol' }, payload: { name: 'Boom' } })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { error: 'Internal Server Error', message: 'an unexpected error occurred', code: 'INTERNAL_ERROR' })
  t.notMatch(res.body, LEAKS)
  t.notMatch(res.body, /secret/)
})
