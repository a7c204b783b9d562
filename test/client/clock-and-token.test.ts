/**
 * The clock estimate from ping round trips (the shortest round trips win), and token refresh before `exp`
 * on a fake clock.
 */
import t from 'tap'
import { ClockEstimator, WatchPartyClient, tokenExpiresAt } from '@watch-party/client'
import { FakeClock } from '../helpers/fake-clock.js'
import { fakeServer } from './helpers/fake-socket.js'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const jwt = (payload: Record<string, unknown>): string => `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}.signature`

t.test('the estimate is the mean offset of the samples with the shortest round trips', async (t) => {
  const clock = new ClockEstimator(10, 2)
  t.equal(clock.estimate, undefined)
  // True offset +5000; symmetric fast samples read it exactly, slow ones are skewed by asymmetric queueing.
  clock.add(0, 5000 + 1, 2) // rtt 2
  clock.add(10, 5010 + 40, 110) // rtt 100, server read late
  clock.add(200, 5200 + 0.5, 201) // rtt 1
  clock.add(300, 5300 + 5, 380) // rtt 80
  const estimate = clock.estimate!
  t.equal(estimate.rtt, 1)
  t.equal(estimate.offset, 5000, 'the two shortest round trips')
  t.equal(estimate.samples, 4)
  clock.add(5, 1, 4)
  t.equal(clock.estimate?.samples, 4, 'a negative round trip is not a sample')
})

t.test('the window keeps the newest samples', async (t) => {
  const clock = new ClockEstimator(3, 1)
  clock.add(0, 100, 0) // rtt 0, offset 100: will fall out of the window
  for (let i = 0; i < 3; i++) clock.add(i * 10, i * 10 + 2 + 7, i * 10 + 4) // rtt 4, offset 7
  t.equal(clock.estimate?.offset, 7)
})

t.test('tokenExpiresAt reads exp without verifying; anything else is undefined', async (t) => {
  t.equal(tokenExpiresAt(jwt({ sub: 'alice', exp: 1_800_000_000 })), 1_800_000_000_000)
  t.equal(tokenExpiresAt(jwt({ sub: 'ünïcödé', exp: 10 })), 10_000, 'UTF-8 payloads decode')
  t.equal(tokenExpiresAt(jwt({ sub: 'alice' })), undefined)
  t.equal(tokenExpiresAt('not-a-jwt'), undefined)
  t.equal(tokenExpiresAt('a.%%%.c'), undefined)
})

t.test('the token callback is called again before exp, the new token sent with auth, without a reconnect', async (t) => {
  const server = fakeServer()
  const clock = new FakeClock()
  const start = clock.now()
  const issued: string[] = []
  const token = (): string => {
    const next = jwt({ sub: 'alice', exp: Math.floor((clock.now() + 120_000) / 1000), n: issued.length })
    issued.push(next)
    return next
  }
  const client = new WatchPartyClient({ url: 'ws://server.test/ws', token, WebSocket: server.WebSocket, timers: clock, now: () => clock.now(), clock: { pings: 1, intervalMs: 3_600_000 }, refreshMarginMs: 30_000 })
  const states: string[] = []
  client.on('state', ({ state }) => { states.push(state) })
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept({ serverTime: clock.now() })
  socket.reply(await socket.nextSent('ping'), { type: 'pong', data: { clientTime: clock.now(), serverTime: clock.now() } })
  t.equal(issued.length, 1, 'one token at connect')
  clock.advance(89_000)
  t.equal(issued.length, 1, 'not yet: exp is 120 s away, the margin 30 s')
  clock.advance(1_000)
  const auth = await socket.nextSent('auth')
  t.equal(issued.length, 2)
  t.equal(auth.data.token, issued[1])
  socket.reply(auth, { type: 'ack', data: {} })
  await new Promise((resolve) => setImmediate(resolve))
  clock.advance(90_000)
  const again = await socket.nextSent('auth')
  t.equal(again.data.token, issued[2], 'and again before the refreshed token expires')
  t.equal(clock.now() - start, 180_000)
  t.same(states, ['connecting', 'connected'], 'no reconnect')
  t.equal(server.sockets.length, 1)
  client.close()
})

t.test('refresh uses the server clock: a local clock an hour behind still refreshes in time', async (t) => {
  const server = fakeServer()
  const clock = new FakeClock()
  const skew = -3_600_000
  const serverNow = (): number => clock.now()
  const token = (): string => jwt({ sub: 'alice', exp: Math.floor((serverNow() + 60_000) / 1000) })
  const client = new WatchPartyClient({ url: 'ws://server.test/ws', token, WebSocket: server.WebSocket, timers: clock, now: () => clock.now() + skew, clock: { pings: 1, intervalMs: 3_600_000 }, refreshMarginMs: 10_000 })
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept({ serverTime: serverNow() })
  const ping = await socket.nextSent('ping')
  socket.reply(ping, { type: 'pong', data: { clientTime: ping.data.clientTime, serverTime: serverNow() } })
  t.ok(Math.abs(client.serverNow() - serverNow()) < 1, 'serverNow() is the server clock despite the skew')
  clock.advance(50_000)
  t.equal((await socket.nextSent('auth')).type, 'auth', 'refreshed 10 s before exp on the server clock')
  client.close()
})
