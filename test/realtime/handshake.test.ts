import net from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { developmentIdentity, type IdentityResolver } from '../../src/http/identity.js'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { TestClient, type Teardown } from '../helpers/ws-client.js'

const database = await createTestDatabase(t)

/** A raw TCP connection to the server that sends `data` (if any) and records what comes back. */
async function rawConnection (tt: Teardown, port: number, data?: string): Promise<{ socket: net.Socket, received: () => string, closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk) => { received += chunk.toString() })
  socket.on('error', () => {})
  const closed = once(socket, 'close').then(() => {})
  tt.teardown(() => { socket.destroy() })
  await once(socket, 'connect')
  if (data !== undefined) socket.write(data)
  return { socket, received: () => received, closed }
}

/** Rejects when `promise` has not settled within `ms`: the behaviour under test is then missing. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: not within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

const portOf = (wsUrl: string): number => Number(new URL(wsUrl).port)

t.test('WS_HANDSHAKE_TIMEOUT_MS: a request whose headers do not arrive in time is dropped', async (t) => {
  const { wsUrl } = await createTestApp(t, { listen: true, database, env: { WS_HANDSHAKE_TIMEOUT_MS: '300' } })
  const partial = await rawConnection(t, portOf(wsUrl), 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n')
  const silent = await rawConnection(t, portOf(wsUrl))
  // Node's defaults held such sockets 60 s and more; the margin here is only for a busy machine.
  await within(partial.closed, 8000, 'the half-sent upgrade was dropped')
  await within(silent.closed, 8000, 'the connection that sent nothing was dropped')
  t.match(partial.received(), /^HTTP\/1\.1 408/, 'answered 408 Request Timeout by Node')
  const client = await TestClient.connect(wsUrl, { userId: 'prompt' }, t)
  t.equal(client.connected.data.userId, 'prompt', 'a client that sends its upgrade at once is not affected')
})

t.test('WS_HANDSHAKE_TIMEOUT_MS: an upgrade not authenticated in time is dropped without an answer', async (t) => {
  const dev = developmentIdentity()
  let resolves = 0
  // An identity provider that never answers for one user.
  const identity: IdentityResolver = {
    mode: 'development',
    resolve: async (source) => {
      resolves++
      if (source.query.userId === 'stuck') return await new Promise(() => {})
      return await dev.resolve(source)
    },
    verifyToken: async (token) => await dev.verifyToken(token)
  }
  const { wsUrl } = await createTestApp(t, { listen: true, database, env: { WS_HANDSHAKE_TIMEOUT_MS: '300' }, deps: { identity } })
  const stuck = TestClient.open(wsUrl, { userId: 'stuck' })
  const closed = await within(stuck.closed, 8000, 'the unauthenticated upgrade was dropped')
  t.equal(closed.code, 1006, 'the TCP connection was closed (no upgrade, no close frame)')
  t.same(stuck.events, [], 'nothing was sent')
  t.equal(resolves, 1)
  const fine = await TestClient.connect(wsUrl, { userId: 'quick' }, t)
  t.equal(fine.connected.data.userId, 'quick')
})

t.test('MAX_CONNECTIONS_PER_ADDRESS: an upgrade beyond it gets 1013; beyond twice it, TCP connections are dropped unread', async (t) => {
  const { wsUrl } = await createTestApp(t, { listen: true, database, env: { MAX_CONNECTIONS_PER_ADDRESS: '3' } })
  const open = [await TestClient.connect(wsUrl, { userId: 'nat-1' }, t), await TestClient.connect(wsUrl, { userId: 'nat-2' }, t)]
  const pending = await rawConnection(t, portOf(wsUrl), 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n') // headers not finished
  const fourth = TestClient.open(wsUrl, { userId: 'nat-4' })
  const refused = await fourth.closed
  t.equal(refused.code, 1013, 'two open and one pending: the fourth upgrade is told to try again later')
  t.match(refused.reason, /too many connections from this address \(at most 3\)/)
  t.notOk(fourth.events.some((e) => e.type === 'connected'))

  const idle: Array<Awaited<ReturnType<typeof rawConnection>>> = []
  for (let i = 0; i < 3; i++) idle.push(await rawConnection(t, portOf(wsUrl)))
  const beyond = await rawConnection(t, portOf(wsUrl))
  await within(beyond.closed, 8000, 'the seventh TCP connection was dropped')
  t.equal(beyond.received(), '', 'dropped unread, with nothing sent')
  t.ok([pending, ...idle].every((c) => !c.socket.destroyed), 'the six connections within twice the cap stay open')
  t.equal((await open[0]!.request('ping', {})).type, 'pong', 'open connections are not affected')

  for (const c of [pending, ...idle]) c.socket.destroy()
  await Promise.all([pending, ...idle].map(async (c) => { await c.closed }))
  let admitted: TestClient | undefined
  for (let attempt = 0; attempt < 50 && admitted === undefined; attempt++) {
    admitted = await TestClient.connect(wsUrl, { userId: 'nat-3' }, t).catch(() => undefined)
  }
  t.equal(admitted?.connected.data.userId, 'nat-3', 'once connections closed, the address may connect again')
})

t.test('connection attempts per address and per user are token buckets; a refusal is 1013', async (t) => {
  const clock = new FakeClock()
  const { wsUrl, app } = await createTestApp(t, {
    listen: true,
    database,
    deps: { clock },
    env: { WS_CONNECTS_PER_ADDRESS_PER_MINUTE: '5', WS_CONNECTS_PER_USER_PER_MINUTE: '2' }
  })
  const attempt = async (userId: string): Promise<{ code: number, reason: string } | 'connected'> => {
    const client = TestClient.open(wsUrl, { userId })
    t.teardown(() => { client.terminate() })
    const outcome = await client.nextOfType('connected').then(() => 'connected' as const, async () => await client.closed)
    client.close()
    return outcome
  }
  t.equal(await attempt('looper'), 'connected')
  t.equal(await attempt('looper'), 'connected')
  const user = await attempt('looper')
  t.match(user, { code: 1013, reason: /too many connection attempts for this user \(at most 2 a minute\)/ }, 'a user reconnecting in a loop is slowed down')
  t.equal(await attempt('neighbour-1'), 'connected', 'other users are not')
  t.equal(await attempt('neighbour-2'), 'connected')
  const address = await attempt('neighbour-3')
  t.match(address, { code: 1013, reason: /too many connection attempts from this address \(at most 5 a minute\)/ }, 'the sixth attempt in a minute from one address')
  clock.advance(12_000)
  t.equal(await attempt('neighbour-3'), 'connected', 'the address bucket refills at 5 a minute')
  clock.advance(30_000)
  t.equal(await attempt('looper'), 'connected', 'the user bucket refills at 2 a minute')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^errors_total\{code="RATE_LIMITED",transport="ws"\} 2$/m, 'both refusals are counted')
})
