/**
 * What the client does after each close code, and when, on a fake clock: 1012 at once with jitter; 1006 and
 * 1013 with exponential backoff and jitter to a cap, reset by a successful connect; 4401 only with a new
 * token; 1003, 1009 and 4429 only when the app says so.
 */
import t, { type Test } from 'tap'
import { DEFAULT_BACKOFF, WatchPartyClient, backoffDelay, closePolicy, type ClientOptions } from '@watch-party/client'
import { FakeClock } from '../helpers/fake-clock.js'
import { fakeServer, type FakeServer, type FakeSocket } from './helpers/fake-socket.js'

function setup (options: Partial<ClientOptions> & { random?: () => number } = {}) {
  const server = fakeServer()
  const clock = new FakeClock()
  const client = new WatchPartyClient({
    url: 'ws://server.test/ws',
    WebSocket: server.WebSocket,
    timers: clock,
    now: () => clock.now(),
    clock: { pings: 1 },
    ...(options.token === undefined ? { userId: 'alice' } : {}),
    ...options
  })
  return { server, clock, client }
}

/** Advances the fake clock by `ms - 1`, checks no socket was opened, then by 1 ms and returns the new socket. */
async function reconnectsAfter (t: Test, server: FakeServer, clock: FakeClock, ms: number): Promise<FakeSocket> {
  const before = server.sockets.length
  clock.advance(ms - 1)
  await Promise.resolve()
  t.equal(server.sockets.length, before, `no attempt before ${ms} ms`)
  clock.advance(1)
  return await server.nextSocket()
}

t.test('the policy table', async (t) => {
  t.equal(closePolicy(1012), 'restart')
  for (const code of [1006, 1013, 1000, 1001, 1011]) t.equal(closePolicy(code), 'backoff', `${code}: backoff`)
  t.equal(closePolicy(4401), 'token')
  for (const code of [1003, 1009, 4429, 1002, 1007, 1008]) t.equal(closePolicy(code), 'ask', `${code}: the app decides`)
})

t.test('backoff delays: equal jitter between half the ceiling and the ceiling, the ceiling doubling to the cap', async (t) => {
  const low = [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, DEFAULT_BACKOFF, () => 0))
  const high = [0, 1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(a, DEFAULT_BACKOFF, () => 0.999999))
  t.same(low, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000])
  t.same(high, [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000])
})

t.test('1006 and 1013: reconnect after growing delays; a successful connect starts over', async (t) => {
  const { server, clock, client } = setup({ random: () => 0.5 })
  const delays: number[] = []
  client.on('reconnecting', ({ delayMs }) => { delays.push(delayMs) })
  void client.connect()
  let socket = await server.nextSocket()
  socket.accept()
  socket.serverClose(1006)
  t.equal(client.state, 'reconnecting')
  socket = await reconnectsAfter(t, server, clock, 375) // ceiling 500: 250 + 0.5 * 250
  socket.serverClose(1006) // refused before any hello
  socket = await reconnectsAfter(t, server, clock, 750)
  socket.serverClose(1013)
  socket = await reconnectsAfter(t, server, clock, 1500)
  socket.serverClose(1006)
  socket = await reconnectsAfter(t, server, clock, 3000)
  socket.accept()
  t.equal(client.state, 'connected')
  socket.serverClose(1006)
  await reconnectsAfter(t, server, clock, 375)
  t.same(delays, [375, 750, 1500, 3000, 375], 'the delays emitted with reconnecting')
  client.close()
})

t.test('the backoff stops growing at maxDelayMs', async (t) => {
  const { server, clock, client } = setup({ random: () => 0, backoff: { minDelayMs: 100, maxDelayMs: 1000 } })
  void client.connect().catch(() => {}) // rejects at close(): it never connected
  let socket = await server.nextSocket()
  for (const expected of [50, 100, 200, 400, 500, 500, 500]) {
    socket.serverClose(1006)
    socket = await reconnectsAfter(t, server, clock, expected)
  }
  client.close()
})

t.test('1012: reconnect at once, within the restart jitter', async (t) => {
  const { server, clock, client } = setup({ random: () => 0.25 })
  void client.connect()
  let socket = await server.nextSocket()
  socket.accept()
  socket.serverClose(1012, 'server restarting')
  socket = await reconnectsAfter(t, server, clock, 250) // 0.25 * restartJitterMs 1000
  socket.accept()
  t.equal(client.state, 'connected')
  client.close()
})

t.test('1003, 1009, 4429: closed unless the app says reconnect', async (t) => {
  for (const code of [1003, 1009, 4429]) {
    const { server, client } = setup()
    const closed = new Promise((resolve) => client.once('closed', resolve))
    void client.connect().catch(() => {})
    const socket = await server.nextSocket()
    socket.accept()
    socket.serverClose(code)
    t.same(await closed, { reason: 'refused', close: { code, reason: '' } }, `${code}: closed`)
    t.equal(client.state, 'closed')
  }
  const asked: number[] = []
  const { server, clock, client } = setup({ random: () => 0, reconnectOn: ({ code }) => { asked.push(code); return true } })
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  socket.serverClose(4429)
  t.same(asked, [4429], 'the app was asked')
  await reconnectsAfter(t, server, clock, 250)
  client.close()
})

t.test('4401 in development mode: closed', async (t) => {
  const { server, client } = setup()
  const closed = new Promise((resolve) => client.once('closed', resolve))
  const connecting = client.connect().catch((e: unknown) => e)
  ;(await server.nextSocket()).serverClose(4401, 'bad user id')
  t.same(await closed, { reason: 'unauthorized', close: { code: 4401, reason: 'bad user id' } })
  t.equal((await connecting as Error).name, 'ClientClosedError', 'connect() rejects when the client closes before connecting')
})

t.test('4401 with a token callback: reconnect with the new token; the same token again: closed', async (t) => {
  const tokens = ['token-1', 'token-2', 'token-2']
  let calls = 0
  const { server, clock, client } = setup({ random: () => 0, token: () => tokens[calls++]! })
  void client.connect().catch(() => {})
  let socket = await server.nextSocket()
  t.equal(new URL(socket.url).searchParams.get('token'), 'token-1', 'the token goes in ?token=')
  socket.accept()
  socket.serverClose(4401, 'token expired')
  await Promise.resolve()
  socket = await reconnectsAfter(t, server, clock, 250)
  t.equal(new URL(socket.url).searchParams.get('token'), 'token-2', 'the new token, asked for once')
  t.equal(calls, 2)
  socket.accept()
  const closed = new Promise((resolve) => client.once('closed', resolve))
  socket.serverClose(4401, 'token expired')
  t.same(await closed, { reason: 'unauthorized', close: { code: 4401, reason: 'token expired' } }, 'no new token: no reconnect')
})

t.test('no hello within connectTimeoutMs: the attempt is abandoned and retried with backoff', async (t) => {
  const { server, clock, client } = setup({ random: () => 0, connectTimeoutMs: 5000 })
  void client.connect()
  const silent = await server.nextSocket()
  clock.advance(5000)
  t.equal(client.state, 'reconnecting')
  t.equal(silent.closedByClient?.code, 4000, 'the silent socket is closed by the client')
  const next = await reconnectsAfter(t, server, clock, 250)
  next.accept()
  t.equal(client.state, 'connected')
  client.close()
})

t.test('a ping without pong drops the connection and reconnects', async (t) => {
  const { server, clock, client } = setup({ random: () => 0, requestTimeoutMs: 4000 })
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  await socket.nextSent('ping')
  const reconnecting = new Promise((resolve) => client.once('reconnecting', resolve))
  clock.advance(4000)
  t.match(await reconnecting, { close: { code: 1006, reason: 'no pong in time' } }, 'the unanswered ping counts as a dead connection')
  await reconnectsAfter(t, server, clock, 250)
  client.close()
})
