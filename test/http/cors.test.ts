import t from 'tap'
import { ConfigError, DEFAULT_CORS_ALLOWED_HEADERS, loadConfig } from '../../src/config.js'
import { createTestApp } from '../helpers/app.js'

const ORIGIN = 'https://watch.example.com'

/** A browser's preflight for a request from ORIGIN with `headers`; the allowed headers it got back. */
async function preflight (app: Awaited<ReturnType<typeof createTestApp>>['app'], headers: string, origin = ORIGIN) {
  const res = await app.inject({
    method: 'OPTIONS',
    url: '/rooms',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': headers }
  })
  const allowed = String(res.headers['access-control-allow-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
  return { res, allowed }
}

function refusal (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`)
}

t.test('by default a preflight allows the headers browser SDKs add: trace context and request ids', async (t) => {
  const { app } = await createTestApp(t, { env: { ALLOWED_ORIGINS: ORIGIN } })
  const { res, allowed } = await preflight(app, 'authorization,content-type,traceparent,tracestate,x-request-id')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], ORIGIN)
  for (const header of ['authorization', 'content-type', 'x-user-id', 'traceparent', 'tracestate', 'x-request-id']) {
    t.ok(allowed.includes(header), `${header} is allowed`)
  }
  t.same(allowed, DEFAULT_CORS_ALLOWED_HEADERS, 'exactly the documented defaults')
})

t.test('no Access-Control-Allow-Credentials: the API takes bearer tokens, not cookies', async (t) => {
  for (const env of [{}, { ALLOWED_ORIGINS: ORIGIN }] as Array<Record<string, string>>) {
    const { app } = await createTestApp(t, { env })
    const { res } = await preflight(app, 'authorization')
    t.equal(res.headers['access-control-allow-credentials'], undefined, `preflight, ${JSON.stringify(env)}`)
    const get = await app.inject({ method: 'GET', url: '/rooms', headers: { origin: ORIGIN, 'x-user-id': 'alice' } })
    t.equal(get.headers['access-control-allow-credentials'], undefined, `answer, ${JSON.stringify(env)}`)
  }
})

t.test('CORS_ALLOWED_HEADERS replaces the list', async (t) => {
  const { app, config } = await createTestApp(t, { env: { CORS_ALLOWED_HEADERS: 'Authorization, Content-Type ,X-Tenant-Id,authorization' } })
  t.same(config.corsAllowedHeaders, ['authorization', 'content-type', 'x-tenant-id'], 'lower-cased, trimmed, deduplicated')
  const { allowed } = await preflight(app, 'authorization,x-tenant-id')
  t.same(allowed, ['authorization', 'content-type', 'x-tenant-id'])
  t.notOk(allowed.includes('x-user-id'), 'a default left out is no longer allowed')
})

t.test('a bad CORS_ALLOWED_HEADERS stops the server with a message naming it', async (t) => {
  t.match(refusal({ CORS_ALLOWED_HEADERS: '*' }), /CORS_ALLOWED_HEADERS entry "\*" is not allowed/)
  t.match(refusal({ CORS_ALLOWED_HEADERS: 'authorization,x bad' }), /CORS_ALLOWED_HEADERS entry "x bad" is not a header name/)
  t.match(refusal({ CORS_ALLOWED_HEADERS: 'x-a,x:b' }), /CORS_ALLOWED_HEADERS entry "x:b"/)
  t.match(refusal({ CORS_ALLOWED_HEADERS: ' , ,' }), /CORS_ALLOWED_HEADERS lists no header/)
  t.same(loadConfig({ CORS_ALLOWED_HEADERS: '  ' }).corsAllowedHeaders, DEFAULT_CORS_ALLOWED_HEADERS, 'blank counts as unset')
})
