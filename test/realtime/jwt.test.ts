import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { SECRET, bearer, keyPair, nowSeconds, sign, signHs256, unsecured } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

// The fake clock starts at real time: jose checks exp against the real clock at connect, the server's
// expiry timers run on the fake one, which the test moves.
const clock = new FakeClock(Date.now())
/** Expiries are set on the fake clock (which is never ahead of real time, so jose accepts them). */
const clockSeconds = (): number => Math.floor(clock.now() / 1000)
const { wsUrl } = await createTestApp(t, { listen: true, deps: { clock }, env: { AUTH_JWT_SECRET: SECRET } })

t.test('a valid token in ?token= or the Authorization header connects as its sub', async (t) => {
  const viaQuery = await TestClient.connect(wsUrl, { token: await signHs256('alice') }, t)
  t.equal(viaQuery.connected.data.userId, 'alice')
  const viaHeader = await TestClient.connect(wsUrl, { headers: bearer(await signHs256('bob')) }, t)
  t.equal(viaHeader.connected.data.userId, 'bob')
})

t.test('without a valid token the socket is accepted and closed with 4401', async (t) => {
  const cases: Array<[string, { userId?: string, token?: string, headers?: Record<string, string> }]> = [
    ['no token', {}],
    ['a development user id is ignored', { userId: 'alice' }],
    ['a forged x-user-id header is ignored', { headers: { 'x-user-id': 'alice' } }],
    ['an expired token', { token: await signHs256('alice', { exp: nowSeconds() - 120 }) }],
    ['a token signed with another secret', { token: await signHs256('alice', {}, 'another-secret-that-is-also-long-enough!!') }],
    ['alg none', { token: unsecured({ sub: 'alice', exp: nowSeconds() + 300 }) }],
    ['garbage', { token: 'not.a.jwt' }]
  ]
  for (const [name, who] of cases) {
    const client = TestClient.open(wsUrl, who)
    const closed = await client.closed
    t.equal(closed.code, 4401, name)
    t.notOk(client.events.some((e) => e.type === 'connected'), `${name}: no hello`)
  }
})

t.test('a connection is closed at its token\'s expiry plus the 30 s leeway', async (t) => {
  const client = await TestClient.connect(wsUrl, { token: await signHs256('carol', { exp: clockSeconds() + 60 }) }, t)
  clock.advance(30_000)
  t.equal((await client.request('ping', {})).type, 'pong', 'open before expiry')
  clock.advance(61_000)
  const closed = await client.closed
  t.equal(closed.code, 4401)
  t.match(closed.reason, /expired/)
})

t.test('auth refreshes the token; a refresh can never change the user', async (t) => {
  const client = await TestClient.connect(wsUrl, { token: await signHs256('dave', { exp: clockSeconds() + 60 }) }, t)
  const other = await client.request('auth', { token: await signHs256('mallory', { exp: clockSeconds() + 3600 }) })
  t.equal(other.type, 'error')
  t.equal(other.data.code, 'UNAUTHORIZED')
  const invalid = await client.request('auth', { token: 'nope' })
  t.equal(invalid.data.code, 'UNAUTHORIZED')
  t.equal((await client.request('ping', {})).type, 'pong', 'a refused refresh does not close the connection')

  const ack = await client.request('auth', { token: await signHs256('dave', { exp: clockSeconds() + 600 }) })
  t.equal(ack.type, 'ack')
  t.same(ack.data, {})
  clock.advance(120_000)
  t.equal((await client.request('ping', {})).type, 'pong', 'still open past the first token\'s expiry')
  const chat = await client.request('create_room', { roomName: 'as dave' })
  t.equal(chat.data.room.hostId, 'dave', 'still acting as the same user')
  clock.advance(511_000)
  t.equal((await client.closed).code, 4401, 'closed at the refreshed token\'s expiry (plus the leeway)')
})

t.test('a refused refresh keeps the old expiry', async (t) => {
  const client = await TestClient.connect(wsUrl, { token: await signHs256('erin', { exp: clockSeconds() + 60 }) }, t)
  await client.request('auth', { token: await signHs256('someone-else', { exp: clockSeconds() + 3600 }) })
  clock.advance(91_000)
  t.equal((await client.closed).code, 4401)
})

t.test('an identity provider whose keys cannot be fetched closes with 1013 (try again later), not 4401', async (t) => {
  const own = await createTestApp(t, { listen: true, env: { AUTH_JWKS_URL: 'http://127.0.0.1:1/.well-known/jwks.json' } })
  const pair = await keyPair('RS256')
  const token = await sign(pair.privateKey, 'frank', { alg: 'RS256', kid: 'k1' })
  const client = TestClient.open(own.wsUrl, { token })
  const closed = await client.closed
  t.equal(closed.code, 1013)
})
