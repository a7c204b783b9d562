/**
 * Cluster mode when Redis goes away: cut (through a TCP proxy of the test's own) and back, and a Redis restart
 * that loses everything it held (a redis-server of the test's own, on a port of its own: the machine's shared
 * Redis is never touched). No room is served by two nodes, nothing acknowledged is lost, /readyz says so, the
 * cluster recovers by itself, and no sequence, epoch or token is reset.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { freePort } from '../helpers/ports.js'
import { serverDatabase, startServer, type ServerProcess } from '../helpers/server-process.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { TestClient, type ReceivedEvent } from '../helpers/ws-client.js'

const skip = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? 'cluster mode needs PostgreSQL: set DATABASE_URL'
  : false
t.setTimeout(300_000)

const LEASE_MS = 2000

async function until (what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${what}: not within ${ms} ms`)
}

/** Sends chat until one is acknowledged; answers it. */
async function chatUntilServed (client: TestClient, roomId: string, message: string): Promise<ReceivedEvent> {
  let served: ReceivedEvent | undefined
  await until(`${client.name}'s chat is served again`, async () => {
    const reply = await client.request('chat', { roomId, message }, 10_000).catch(() => undefined)
    if (reply?.type === 'chat') served = reply
    return served !== undefined
  }, 30_000)
  return served!
}

t.test('Redis cut and back: requests are refused meanwhile, /readyz is 503, then everything recovers', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const proxy = await TcpProxy.start(t, { host: '127.0.0.1', port: 6379 })
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const env = (name: string) => ({ REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: String(LEASE_MS) })
  const [a, b] = await Promise.all(['cut-a', 'cut-b'].map(async (n) => await startServer(t, { database, env: env(n) }))) as [ServerProcess, ServerProcess]
  const host = await TestClient.connect(a.wsUrl, { userId: 'cuth' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'redis cut' }, 'room_created')).data.room.id as string
  const viewer = await TestClient.connect(b.wsUrl, { userId: 'cutv' }, t)
  await viewer.expect('join_room', { roomId }, 'room_joined')
  const before = await viewer.expect('chat', { roomId, message: 'before the cut' }, 'chat')

  proxy.cut()
  await until('every node reports not ready', async () => (await a.http('GET', '/readyz')).status === 503 && (await b.http('GET', '/readyz')).status === 503)
  await new Promise((resolve) => setTimeout(resolve, LEASE_MS)) // past two thirds of a lease: no node serves the room
  const refused = await viewer.request('chat', { roomId, message: 'during the cut' }, 10_000)
  t.match(refused, { type: 'error', data: { code: 'SERVICE_UNAVAILABLE' } }, 'a chat during the cut is refused, not half-done')
  const refusedOnOwner = await host.request('chat', { roomId, message: 'during the cut, on the owner' }, 10_000)
  t.match(refusedOnOwner, { type: 'error', data: { code: 'SERVICE_UNAVAILABLE' } }, 'the former owner cannot prove it owns the room either')

  proxy.restore()
  await until('every node is ready again', async () => (await a.http('GET', '/readyz')).status === 200 && (await b.http('GET', '/readyz')).status === 200)
  const after = await chatUntilServed(viewer, roomId, 'after the cut')
  t.equal(after.epoch, before.epoch, 'same epoch')
  t.equal(after.seq, (before.seq as number) + 1, 'the sequence goes on: the refused lines took no position')
  await host.next((e) => e.type === 'chat' && e.data.message === 'after the cut', 10_000)
  const room = await b.http('GET', `/rooms/${roomId}`, { userId: 'cutv' })
  t.same(room.body.participants, ['cuth', 'cutv'], 'nobody was dropped')
})

t.test('a Redis restart that loses everything it held resets no sequence, epoch or token', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const port = await freePort()
  const redis = await startRedis(t, port)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const env = (name: string) => ({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: String(LEASE_MS) })
  const [a, b] = await Promise.all(['rs-a', 'rs-b'].map(async (n) => await startServer(t, { database, env: env(n) }))) as [ServerProcess, ServerProcess]
  const host = await TestClient.connect(a.wsUrl, { userId: 'rsh' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'redis restart' }, 'room_created')).data.room.id as string
  const viewer = await TestClient.connect(b.wsUrl, { userId: 'rsv' }, t)
  await viewer.expect('join_room', { roomId }, 'room_joined')
  const before = await host.expect('chat', { roomId, message: 'before the restart' }, 'chat')

  redis.kill('SIGKILL')
  await once(redis, 'exit')
  await startRedis(t, port) // empty: no leases, no presence
  const after = await chatUntilServed(viewer, roomId, 'after the restart')
  t.equal(after.epoch, before.epoch, 'same epoch')
  t.equal(after.seq, (before.seq as number) + 1, 'the sequence continues from PostgreSQL')
  await host.next((e) => e.type === 'chat' && e.data.message === 'after the restart', 10_000)
  await host.barrier()
  t.same(host.received('participant_left'), [], 'nobody was dropped')
})

/** A redis-server of this test's own, keeping nothing on disk; killed in teardown. */
async function startRedis (t: { teardown (fn: () => void): void }, port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await until('redis-server answers', async () => await new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.end(); resolve(true) })
    socket.once('error', () => { resolve(false) })
  }), 10_000)
  return child
}
