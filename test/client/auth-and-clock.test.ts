/**
 * Against a real server: a token that expires while connected is refreshed without a drop; a token callback
 * that has nothing new ends in `closed` after the server's 4401; a refused token is replaced by the callback's
 * next one. And the clock: with the local clock seconds off, serverNow() is the server's clock within 5 ms.
 */
import t from 'tap'
import WebSocket from 'ws'
import { WatchPartyClient, type ConnectionState } from '@watch-party/client'
import { CLOCK_TOLERANCE_SECONDS } from '../../src/http/jwt-identity.js'
import { createTestApp } from '../helpers/app.js'
import { SECRET, nowSeconds, signHs256 } from '../helpers/tokens.js'

const JWT_ENV = { AUTH_JWT_SECRET: SECRET }
/**
 * The server accepts a token until CLOCK_TOLERANCE_SECONDS after its exp and closes the socket only then; a
 * token whose exp lies that far in the past, plus `seconds`, is one the server drops `seconds` from now.
 */
const dropsIn = (seconds: number): number => nowSeconds() - CLOCK_TOLERANCE_SECONDS + seconds

t.test('a token that expires while connected is refreshed with auth, without a drop', async (t) => {
  const app = await createTestApp(t, { listen: true, env: JWT_ENV })
  // The first token is one the server would drop 4 s from now; the callback's next ones last 8 s.
  const issued: number[] = []
  const token = async (): Promise<string> => {
    const exp = issued.length === 0 ? dropsIn(4) : nowSeconds() + 8
    issued.push(exp * 1000)
    return await signHs256('alice', { exp })
  }
  const client = new WatchPartyClient({ url: app.wsUrl, token, WebSocket, refreshMarginMs: 2000 })
  t.teardown(() => { client.close() })
  const states: ConnectionState[] = []
  client.on('state', ({ state }) => { states.push(state) })
  const refreshed: Array<number | undefined> = []
  const twice = new Promise<void>((resolve) => {
    client.on('token_refreshed', ({ expiresAt }) => {
      refreshed.push(expiresAt)
      if (refreshed.length === 2) resolve()
    })
  })
  await client.connect()
  t.equal(client.userId, 'alice', 'the token\'s sub')
  const room = await client.createRoom('long movie')
  await twice // the second refresh comes 2 s before the second token's exp: after the first one's deadline
  t.ok(Date.now() >= issued[0]! + CLOCK_TOLERANCE_SECONDS * 1000, 'the server\'s deadline for the first token has passed')
  t.same(refreshed, issued.slice(1, 3), 'each refresh handed the server the callback\'s next token')
  t.equal((await room.sendChat('still here')).message, 'still here', 'the connection still serves requests')
  t.same(states, ['connecting', 'connected'], 'never dropped')
})

t.test('the callback has no new token: the server closes with 4401 at exp, the client ends in closed', async (t) => {
  const app = await createTestApp(t, { listen: true, env: JWT_ENV })
  const only = await signHs256('alice', { exp: dropsIn(2) })
  const client = new WatchPartyClient({ url: app.wsUrl, token: () => only, WebSocket, refreshMarginMs: 1000 })
  t.teardown(() => { client.close() })
  const errors: string[] = []
  client.on('error', (err) => { errors.push(err.message) })
  const closed = new Promise((resolve) => client.once('closed', resolve))
  await client.connect()
  t.match(await closed, { reason: 'unauthorized', close: { code: 4401 } })
  t.equal(client.state, 'closed')
  t.ok(errors.some((m) => m.includes('returned the token that is about to expire')), 'the app heard why the refresh failed')
})

t.test('a refused token (4401 at connect): the client reconnects with the callback\'s next token', async (t) => {
  const app = await createTestApp(t, { listen: true, env: JWT_ENV })
  const tokens = [await signHs256('alice', {}, 'another-secret-that-is-long-enough-for-hs256'), await signHs256('alice')]
  let calls = 0
  const client = new WatchPartyClient({ url: app.wsUrl, token: () => tokens[Math.min(calls++, 1)]!, WebSocket, backoff: { minDelayMs: 50 } })
  t.teardown(() => { client.close() })
  const closes: number[] = []
  client.on('reconnecting', ({ close }) => { closes.push(close.code) })
  await client.connect()
  t.same(closes, [4401], 'refused once')
  t.equal(calls, 2, 'asked for a new token once')
  t.equal(client.userId, 'alice')
  t.equal((await client.request('ping', {})).type, 'pong')
})

t.test('clock: a local clock 7 s fast still gives the server clock within 5 ms', async (t) => {
  const app = await createTestApp(t, { listen: true })
  const skewMs = 7_000
  // The local clock the way the server keeps its own (wall clock, monotonic precision), 7 s fast.
  const wallMinusMonotonic = Date.now() - performance.now()
  const skewed = (): number => wallMinusMonotonic + performance.now() + skewMs
  const client = new WatchPartyClient({ url: app.wsUrl, userId: 'alice', WebSocket, now: skewed, clock: { pings: 8 } })
  t.teardown(() => { client.close() })
  const estimated = new Promise<{ offset: number, rtt: number }>((resolve) => client.once('clock', resolve))
  await client.connect()
  const estimate = await estimated
  const errors = [0, 1, 2].map(() => client.serverNow() - Date.now())
  t.ok(Math.abs(estimate.offset + skewMs) < 5, `offset ${estimate.offset.toFixed(3)} ms (shortest round trip ${estimate.rtt.toFixed(3)} ms)`)
  for (const error of errors) t.ok(Math.abs(error) < 5, `serverNow() - server clock = ${error.toFixed(3)} ms`)
})
