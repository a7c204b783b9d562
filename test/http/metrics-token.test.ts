import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { createTestApp } from '../helpers/app.js'
import { assertError } from '../helpers/tokens.js'

const TOKEN = 'scrape-me-0123456789abcdef'

function refusal (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`)
}

t.test('with METRICS_TOKEN set, /metrics needs it as a bearer token', async (t) => {
  const { app } = await createTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  const scrape = async (headers: Record<string, string> = {}) => await app.inject({ method: 'GET', url: '/metrics', headers })

  for (const [why, headers] of [
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer scrape-me-0123456789abcdeX' }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['the token as Basic credentials', { authorization: `Basic ${TOKEN}` }],
    ['the token without the scheme', { authorization: TOKEN }],
    ['a user identity', { 'x-user-id': 'alice' }]
  ] as Array<[string, Record<string, string>]>) {
    const res = await scrape(headers)
    assertError(t, res, 401, 'UNAUTHORIZED')
    t.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"', `${why}: WWW-Authenticate says how`)
    t.notMatch(res.body, /http_request_duration_seconds/, `${why}: no metric leaks`)
  }

  const ok = await scrape({ authorization: `Bearer ${TOKEN}` })
  t.equal(ok.statusCode, 200)
  t.match(ok.body, /^# TYPE http_request_duration_seconds histogram$/m)
  t.equal((await scrape({ authorization: `bearer  ${TOKEN} ` })).statusCode, 200, 'the scheme is case-insensitive, spaces around are fine')

  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz stays public')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, '/readyz stays public')

  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.same(document.paths['/metrics'].get.security, [{ metricsToken: [] }], 'the OpenAPI document declares the requirement')
  t.match(document.components.securitySchemes.metricsToken, { type: 'http', scheme: 'bearer' })
  t.ok(document.paths['/metrics'].get.responses['401'], 'and its 401')
})

t.test('without METRICS_TOKEN /metrics stays public, and says so in the document', async (t) => {
  const { app } = await createTestApp(t)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.same(document.paths['/metrics'].get.security, [])
  t.equal(document.components.securitySchemes.metricsToken, undefined)
  t.equal(document.paths['/metrics'].get.responses['401'], undefined)
})

t.test('the operational routes refuse query parameters with 400 VALIDATION_FAILED', async (t) => {
  const { app } = await createTestApp(t, { env: { METRICS_TOKEN: TOKEN } })
  for (const url of ['/healthz?verbose=1', '/readyz?x', `/metrics?name[]=rooms_open`]) {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${TOKEN}` } })
    assertError(t, res, 400, 'VALIDATION_FAILED')
  }
})

t.test('a weak METRICS_TOKEN stops the server with a message naming it', async (t) => {
  t.match(refusal({ METRICS_TOKEN: 'short' }), /METRICS_TOKEN must be at least 16 characters/)
  t.match(refusal({ METRICS_TOKEN: 'has spaces inside of it!' }), /METRICS_TOKEN/)
  t.equal(loadConfig({ METRICS_TOKEN: '  ' }).metricsToken, undefined, 'blank counts as unset')
  t.equal(loadConfig({ METRICS_TOKEN: ` ${TOKEN} ` }).metricsToken, TOKEN)
})
