import t from 'tap'
import { CLOCK_TOLERANCE_SECONDS } from '../../src/http/jwt-identity.js'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { SECRET, bearer, signHs256 } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

const database = await createTestDatabase(t)

/**
 * An app whose fake clock starts at real time: jose checks exp against the real clock, the server's expiry
 * timers run on the fake one, which the test moves. One per test, so each starts level with real time.
 */
async function jwtApp (tt: Parameters<typeof createTestApp>[0]) {
  const clock = new FakeClock(Date.now())
  const built = await createTestApp(tt, { listen: true, database, deps: { clock }, env: { AUTH_JWT_SECRET: SECRET } })
  return { ...built, clock, clockSeconds: (): number => Math.floor(clock.now() / 1000) }
}

t.test('a token inside the clock-skew leeway is good on REST, at the upgrade and on the open socket alike', async (t) => {
  const { app, wsUrl, clock, clockSeconds } = await jwtApp(t)
  t.equal(CLOCK_TOLERANCE_SECONDS, 30)
  // Expired 10 s ago by the issuer's clock: within the 30 s leeway, so every check accepts it.
  const token = await signHs256('skewed', { exp: clockSeconds() - 10 })
  const rest = await app.inject({ method: 'GET', url: '/rooms', headers: bearer(token) })
  t.equal(rest.statusCode, 200, 'REST accepts it')
  const client = await TestClient.connect(wsUrl, { token }, t)
  t.equal(client.connected.data.userId, 'skewed', 'the upgrade accepts it')
  clock.advance(18_000)
  t.equal((await client.request('ping', {})).type, 'pong', 'the socket stays open while the token is inside the leeway')
  clock.advance(3000)
  const closed = await client.closed
  t.equal(closed.code, 4401, 'closed once exp + leeway has passed')
  t.match(closed.reason, /expired/)
})

t.test('a refreshed token inside the leeway follows the same rule', async (t) => {
  const { wsUrl, clock, clockSeconds } = await jwtApp(t)
  const client = await TestClient.connect(wsUrl, { token: await signHs256('refresher', { exp: clockSeconds() + 5 }) }, t)
  const refreshed = await client.request('auth', { token: await signHs256('refresher', { exp: clockSeconds() - 5 }) })
  t.equal(refreshed.type, 'ack', 'auth accepts a token inside the leeway')
  clock.advance(23_000)
  t.equal((await client.request('ping', {})).type, 'pong', 'open until the refreshed exp + 30 s')
  clock.advance(3000)
  t.equal((await client.closed).code, 4401)
})
