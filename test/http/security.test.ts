import t from 'tap'
import { redactCredentials, requestLogSerializer } from '../../src/http/request-log.js'
import { createTestApp } from '../helpers/app.js'
import { assertError, bearer, SECRET, signHs256 } from '../helpers/tokens.js'

const ALLOWED = 'https://watch.example.com'

t.test('CORS with ALLOWED_ORIGINS', async (t) => {
  const { app } = await createTestApp(t, { env: { ALLOWED_ORIGINS: `${ALLOWED},http://localhost:5173` } })
  const list = async (origin: string) => await app.inject({ method: 'GET', url: '/rooms', headers: { 'x-user-id': 'alice', origin } })

  t.test('an allowed origin gets access-control-allow-origin', async (t) => {
    const res = await list(ALLOWED)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['access-control-allow-origin'], ALLOWED)
    t.match(res.headers.vary, /Origin/)
    t.match(res.headers['access-control-expose-headers'], /retry-after/)
    t.equal((await list('http://localhost:5173')).headers['access-control-allow-origin'], 'http://localhost:5173')
  })

  t.test('another origin gets no CORS headers', async (t) => {
    for (const origin of ['https://evil.example.com', 'https://watch.example.com.evil.com', 'http://watch.example.com', 'null']) {
      t.equal((await list(origin)).headers['access-control-allow-origin'], undefined, origin)
    }
  })

  t.test('a preflight from an allowed origin lists the methods and headers the API uses', async (t) => {
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/rooms/3f0c2d9e-8c1a-4b7e-9f3a-2d1c0b9a8e7f',
      headers: { origin: ALLOWED, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization' }
    })
    t.equal(res.statusCode, 204)
    t.equal(res.headers['access-control-allow-origin'], ALLOWED)
    t.match(res.headers['access-control-allow-methods'], /DELETE/)
    t.match(res.headers['access-control-allow-headers'], /authorization/)
  })

  t.test('a preflight from another origin is not allowed', async (t) => {
    const res = await app.inject({
      method: 'OPTIONS', url: '/rooms', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' }
    })
    t.equal(res.headers['access-control-allow-origin'], undefined)
  })

  t.test('errors carry the CORS headers too, so the page can read why', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/rooms', headers: { origin: ALLOWED } })
    assertError(t, res, 401, 'UNAUTHORIZED')
    t.equal(res.headers['access-control-allow-origin'], ALLOWED)
  })
})

t.test('without ALLOWED_ORIGINS every origin is allowed', async (t) => {
  const { app } = await createTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/rooms', headers: { 'x-user-id': 'alice', origin: 'https://anywhere.example.org' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
})

t.test('security headers', async (t) => {
  const { app } = await createTestApp(t)

  t.test('REST answers carry helmet\'s headers and a CSP that allows nothing', async (t) => {
    for (const url of ['/rooms', '/healthz', '/no-such-route']) {
      const res = await app.inject({ method: 'GET', url, headers: { 'x-user-id': 'alice' } })
      t.equal(res.headers['x-content-type-options'], 'nosniff', url)
      t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', url)
      t.match(res.headers['strict-transport-security'], /max-age=\d+/, url)
      t.equal(res.headers['referrer-policy'], 'no-referrer', url)
      t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", url)
      t.equal(res.headers['x-powered-by'], undefined, url)
    }
  })

  t.test('/docs still renders: its scripts and styles are same-origin files the docs CSP allows', async (t) => {
    for (const page of ['/docs', '/docs/']) {
      const res = await app.inject({ method: 'GET', url: page })
      t.equal(res.statusCode, 200, page)
      t.match(res.headers['content-type'], /^text\/html/)
      const csp = String(res.headers['content-security-policy'])
      const directive = (name: string): string[] => csp.split(';').find((d) => d.trim().startsWith(`${name} `))?.trim().split(/\s+/).slice(1) ?? []
      t.ok(directive('script-src').includes("'self'"), 'scripts from this server run')
      t.ok(directive('style-src').includes("'self'"), 'styles from this server apply')
      t.ok(directive('connect-src').includes("'self'"), 'the page may fetch the OpenAPI document')
      t.notOk(csp.includes('upgrade-insecure-requests'), 'no upgrade: the page works on plain http too')

      const html = res.body
      const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1] ?? '')
      t.ok(scripts.length > 0, 'the page has scripts')
      t.ok(scripts.every((attributes) => /\ssrc="/.test(attributes)), 'no inline script (the CSP would block it)')
      t.notMatch(html, /\son[a-z]+="/, 'no inline event handler (script-src-attr none)')
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')
      for (const asset of assets) {
        const url = new URL(asset, `http://localhost${page}`)
        t.equal(url.origin, 'http://localhost', `${asset} is same-origin`)
        const fetched = await app.inject({ method: 'GET', url: url.pathname })
        t.equal(fetched.statusCode, 200, `${url.pathname} is served`)
      }
    }
    const spec = await app.inject({ method: 'GET', url: '/docs/json' })
    t.equal(spec.statusCode, 200, 'the document the page loads')
  })
})

t.test('REST rate limit', async (t) => {
  const LIMIT = 3
  const { app } = await createTestApp(t, { env: { REST_RATE_LIMIT_PER_MINUTE: String(LIMIT) } })
  const list = async (headers: Record<string, string>) => await app.inject({ method: 'GET', url: '/rooms', headers })

  t.test('past the limit a user gets 429 RATE_LIMITED with Retry-After', async (t) => {
    for (let i = 0; i < LIMIT; i++) {
      const res = await list({ 'x-user-id': 'alice' })
      t.equal(res.statusCode, 200, `request ${i + 1} is served`)
      t.equal(res.headers['x-ratelimit-remaining'], String(LIMIT - i - 1))
    }
    const limited = await list({ 'x-user-id': 'alice' })
    t.match(assertError(t, limited, 429, 'RATE_LIMITED'), /too many requests/)
    t.equal(limited.json().error, 'Too Many Requests')
    const retryAfter = Number(limited.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 60, `Retry-After is whole seconds (${retryAfter})`)
    t.equal(limited.headers['x-content-type-options'], 'nosniff', 'security headers on the 429 too')
  })

  t.test('the limit is per user: another user is still served', async (t) => {
    t.equal((await list({ 'x-user-id': 'bob' })).statusCode, 200)
  })

  t.test('every route counts, including unknown ones', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/no-such-route', headers: { 'x-user-id': 'alice' } })
    assertError(t, res, 429, 'RATE_LIMITED')
  })

  t.test('/healthz, /readyz and /metrics are never limited', async (t) => {
    for (let i = 0; i < LIMIT * 3; i++) {
      for (const url of ['/healthz', '/readyz', '/metrics']) {
        const res = await app.inject({ method: 'GET', url, headers: { 'x-user-id': 'alice' } })
        t.equal(res.statusCode, 200, `${url} #${i + 1}`)
      }
    }
  })

  t.test('the limited answers are counted in the metrics', async (t) => {
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.match(metrics, /code="RATE_LIMITED"/)
  })
})

t.test('JWT mode: requests without a valid identity are limited per IP before they get 401', async (t) => {
  const LIMIT = 2
  const { app } = await createTestApp(t, { env: { AUTH_JWT_SECRET: SECRET, REST_RATE_LIMIT_PER_MINUTE: String(LIMIT) } })
  const forged = await signHs256('alice', {}, 'another-secret-that-is-also-32-bytes-long')
  for (let i = 0; i < LIMIT; i++) {
    assertError(t, await app.inject({ method: 'GET', url: '/rooms', headers: bearer(forged) }), 401, 'UNAUTHORIZED')
  }
  assertError(t, await app.inject({ method: 'GET', url: '/rooms', headers: bearer(forged) }), 429, 'RATE_LIMITED')
  assertError(t, await app.inject({ method: 'GET', url: '/rooms', headers: { 'x-user-id': 'alice' } }), 429, 'RATE_LIMITED')

  // A valid token is keyed on its user, not on the shared IP.
  const alice = await signHs256('alice')
  t.equal((await app.inject({ method: 'GET', url: '/rooms', headers: bearer(alice) })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/rooms', headers: bearer(alice) })).statusCode, 200)
  assertError(t, await app.inject({ method: 'GET', url: '/rooms', headers: bearer(alice) }), 429, 'RATE_LIMITED')
  t.equal((await app.inject({ method: 'GET', url: '/rooms', headers: bearer(await signHs256('bob')) })).statusCode, 200)
})

t.test('tokens in the query string never reach the request log', async (t) => {
  t.equal(redactCredentials('/ws?token=eyJ.abc.def'), '/ws?token=[redacted]')
  t.equal(redactCredentials('/ws?room=1&token=eyJ.abc.def&x=2'), '/ws?room=1&token=[redacted]&x=2')
  t.equal(redactCredentials('/ws?TOKEN=a&token=b'), '/ws?TOKEN=[redacted]&token=[redacted]')
  t.equal(redactCredentials('/rooms?mytoken=keep'), '/rooms?mytoken=keep')
  const logged = requestLogSerializer({ method: 'GET', url: '/ws?token=secret', host: 'h', ip: '127.0.0.1', socket: { remotePort: 1 } } as never)
  t.same(logged, { method: 'GET', url: '/ws?token=[redacted]', host: 'h', remoteAddress: '127.0.0.1', remotePort: 1 })
})
