/**
 * The owner's local fast path (cluster mode): a room's owner delivers its events to its own members when it
 * publishes them, not when its publication comes back from Redis; the echo is skipped. Shown by holding back
 * everything Redis sends to the owner's subscriber connection (a proxy of the test's own in front of the
 * machine's shared Redis, which is never touched): the owner's members still get every event at once, in order,
 * a member joining on the owner meanwhile gets exactly the events after its snapshot, the edge's member gets
 * every event through Redis as before, and once the held echoes arrive nobody on the owner gets one twice.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import { serverDatabase, startServer, type ServerProcess } from '../helpers/server-process.js'
import { canonicalJson, TestClient, type ReceivedEvent, type Teardown } from '../helpers/ws-client.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const skip = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? 'cluster mode needs PostgreSQL: set DATABASE_URL'
  : false
t.setTimeout(120_000)

/**
 * A TCP proxy in front of Redis that can hold back what Redis sends to a node's subscriber connection only (the
 * one that names itself `wp-<node>-sub`, src/cluster/redis-link.ts): the node's commands (leases, presence,
 * publishing) go on, while the room messages for it wait in the proxy.
 */
class SubscriberHold {
  private held = false
  private readonly pipes = new Set<{ client: net.Socket, upstream: net.Socket, subscriber: boolean, queue: Buffer[] }>()
  /** Bytes held back from the subscriber since the hold began. */
  heldBytes = 0

  private constructor (private readonly server: net.Server, readonly port: number, target: URL, nodeId: string) {
    const name = Buffer.from(`wp-${nodeId}-sub`)
    server.on('connection', (client) => {
      const upstream = net.connect(Number(target.port), target.hostname)
      const pipe = { client, upstream, subscriber: false, queue: [] as Buffer[] }
      this.pipes.add(pipe)
      client.on('data', (chunk: Buffer) => {
        if (chunk.includes(name)) pipe.subscriber = true // CLIENT SETNAME, the connection's first command
        upstream.write(chunk)
      })
      upstream.on('data', (chunk: Buffer) => {
        if (this.held && pipe.subscriber) {
          pipe.queue.push(chunk)
          this.heldBytes += chunk.length
        } else {
          client.write(chunk)
        }
      })
      const end = (): void => {
        this.pipes.delete(pipe)
        client.destroy()
        upstream.destroy()
      }
      for (const socket of [client, upstream]) {
        socket.on('close', end)
        socket.on('error', end)
      }
    })
  }

  static async start (t: Teardown, target: string, nodeId: string): Promise<SubscriberHold> {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const proxy = new SubscriberHold(server, (server.address() as net.AddressInfo).port, new URL(target), nodeId)
    t.teardown(async () => { await proxy.close() })
    return proxy
  }

  get subscribers (): number {
    return [...this.pipes].filter((p) => p.subscriber).length
  }

  hold (): void {
    this.held = true
    this.heldBytes = 0
  }

  release (): void {
    this.held = false
    for (const pipe of this.pipes) for (const chunk of pipe.queue.splice(0)) pipe.client.write(chunk)
  }

  async close (): Promise<void> {
    for (const pipe of this.pipes) {
      pipe.client.destroy()
      pipe.upstream.destroy()
    }
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const stream = (c: TestClient, roomId: string): ReceivedEvent[] => c.events.filter((e) => e.channel === `room-${roomId}` && typeof e.seq === 'number')

t.test('the owner delivers to its own members without the Redis round trip, once each, in order; the edge as before', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const proxy = await SubscriberHold.start(t, REDIS_URL, 'fp-owner')
  const env = (name: string, url: string): Record<string, string> => ({ REDIS_URL: url, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: '5000' })
  const [owner, edge] = await Promise.all([
    startServer(t, { database, env: env('fp-owner', `redis://127.0.0.1:${proxy.port}`) }),
    startServer(t, { database, env: env('fp-edge', REDIS_URL) })
  ]) as [ServerProcess, ServerProcess]
  t.equal(proxy.subscribers, 1, 'the proxy knows the owner\'s subscriber connection')

  const host = await TestClient.connect(owner.wsUrl, { userId: 'fp-host' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'fast path' }, 'room_created')).data.room.id as string
  const near = await TestClient.connect(owner.wsUrl, { userId: 'fp-near' }, t)
  await near.expect('join_room', { roomId }, 'room_joined')
  const far = await TestClient.connect(edge.wsUrl, { userId: 'fp-far' }, t)
  const farJoined = await far.expect('join_room', { roomId }, 'room_joined')
  await near.next((e) => e.type === 'participant_joined' && e.data.userId === 'fp-far')
  const first = await host.expect('chat', { roomId, message: 'before the hold' }, 'chat')
  for (const c of [near, far]) await c.next((e) => e.type === 'chat' && e.data.message === 'before the hold')

  // Redis → owner's subscriber held from here: only the fast path can bring the owner's members anything.
  proxy.hold()
  const sent: ReceivedEvent[] = []
  // Each chat reaches the owner's members with the host's reply (written in the same turn), not after a
  // periodic position check filled it from the history (every 5 s): within a second, however busy the machine.
  const chat = async (i: number, members: TestClient[]): Promise<void> => {
    sent.push(await host.expect('chat', { roomId, message: `held ${i}` }, 'chat'))
    const started = Date.now()
    for (const m of members) {
      const seen = await m.next((e) => e.type === 'chat' && e.data.message === `held ${i}`, 1000).catch(() => undefined)
      if (seen === undefined) t.fail(`${m.name} did not get "held ${i}" within 1 s of the host's reply`)
    }
    const tookMs = Date.now() - started
    if (tookMs > 500) t.comment(`"held ${i}" reached the owner's members ${tookMs} ms after the host's reply`)
  }
  for (let i = 0; i < 10; i++) await chat(i, [near])
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/fast.mp4', currentTime: 7, isPlaying: true }, 'ack')
  await near.next((e) => e.type === 'sync' && e.data.currentTime === 7, 1000).catch(() => undefined)
  // A host_sync is no stream event (no position, never filled from the history): only the fast path brings it.
  t.ok(near.received('sync').some((e) => e.data.currentTime === 7), 'the owner\'s member got the host_sync during the hold')
  const late = await TestClient.connect(owner.wsUrl, { userId: 'fp-late' }, t)
  const lateJoined = await late.expect('join_room', { roomId }, 'room_joined')
  for (let i = 10; i < 15; i++) await chat(i, [near, late])
  t.ok(proxy.heldBytes > 0, `the owner's echoes were held in the proxy meanwhile (${proxy.heldBytes} bytes)`)
  await far.next((e) => e.type === 'chat' && e.data.message === 'held 14', 5000)

  // The held echoes arrive: skipped, not delivered again.
  proxy.release()
  await sleep(500)
  await host.expect('chat', { roomId, message: 'after the hold' }, 'chat')
  for (const c of [near, late, far]) {
    await c.next((e) => e.type === 'chat' && e.data.message === 'after the hold', 5000)
    await c.barrier()
  }

  const lastSeq = (sent.at(-1)!.seq as number) + 1 // 'after the hold' (a join took a position in between)
  const check = (client: TestClient, from: number, what: string): Map<number, string> => {
    const seqs = stream(client, roomId).filter((e) => e.replyTo === undefined).map((e) => e.seq as number)
    const expected = Array.from({ length: lastSeq - from }, (_v, i) => from + 1 + i)
    t.same(seqs, expected, `${what}: every event after its snapshot (seq ${from}) once, in order, nothing earlier`)
    return new Map(stream(client, roomId).map((e) => [e.seq as number, canonicalJson([e.type, e.epoch, e.data])]))
  }
  const nearJoinSeq = (near.events.find((e) => e.type === 'room_joined')!.data.seq as number)
  const nearView = check(near, nearJoinSeq, 'member on the owner')
  const lateView = check(late, lateJoined.data.seq as number, 'member who joined on the owner during the hold')
  const farView = check(far, farJoined.data.seq as number, 'member on the edge')
  for (let seq = (lateJoined.data.seq as number) + 1; seq <= lastSeq; seq++) {
    t.ok(nearView.get(seq) === farView.get(seq) && lateView.get(seq) === farView.get(seq), `seq ${seq}: the same event on both nodes`)
  }
  t.equal(first.seq, nearJoinSeq + 2, 'the positions around the first chat: near joined, far joined, then the chat')
  t.equal(near.received('sync').filter((e) => e.data.currentTime === 7).length, 1, 'the host_sync once on the owner')
  t.equal(far.received('sync').filter((e) => e.data.currentTime === 7).length, 1, 'the host_sync once on the edge')
})
