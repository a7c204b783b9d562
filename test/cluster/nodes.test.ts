/**
 * Several server processes on one PostgreSQL database and one Redis (cluster mode): one order of events per
 * room wherever its members are connected, takeover of a dead owner's rooms with the same epoch and nobody
 * dropped, an edge's death turning its users' connections into graces, and hand-over at SIGTERM.
 * Each file uses its own Redis prefix, so files run in parallel against the machine's one Redis.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { serverDatabase, startServer, type ServerDatabase, type ServerProcess } from '../helpers/server-process.js'
import { TestClient, type ReceivedEvent, type Teardown } from '../helpers/ws-client.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const skip = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === ''
  ? 'cluster mode needs PostgreSQL: set DATABASE_URL (several processes cannot share the embedded database)'
  : false

t.setTimeout(300_000)

const LEASE_MS = 2000
const GRACE_MS = 8000

async function cluster (t: Teardown, names: string[], database?: ServerDatabase): Promise<{ nodes: ServerProcess[], database: ServerDatabase, prefix: string }> {
  database ??= await serverDatabase(t)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const nodes = await Promise.all(names.map(async (name) => await startServer(t, {
    database,
    env: { REDIS_URL, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: String(LEASE_MS), DISCONNECT_GRACE_MS: String(GRACE_MS) }
  })))
  return { nodes, database, prefix }
}

const stream = (c: TestClient, roomId: string): ReceivedEvent[] => c.events.filter((e) => e.channel === `room-${roomId}` && typeof e.seq === 'number')

t.test('members on three nodes see one order, with the same seq and data everywhere', { skip }, async (t) => {
  const { nodes } = await cluster(t, ['node-a', 'node-b', 'node-c'])
  const [a, b, c] = nodes as [ServerProcess, ServerProcess, ServerProcess]
  const host = await TestClient.connect(a.wsUrl, { userId: 'ann' }, t)
  const created = await host.expect('create_room', { roomName: 'three nodes' }, 'room_created')
  const roomId = created.data.room.id as string
  t.match(created.data.room, { hostId: 'ann' })
  const onB = await TestClient.connect(b.wsUrl, { userId: 'ben' }, t)
  const onC = await TestClient.connect(c.wsUrl, { userId: 'cat' }, t)
  t.equal((await onB.expect('join_room', { roomId }, 'room_joined')).data.seq, 1)
  t.equal((await onC.expect('join_room', { roomId }, 'room_joined')).data.seq, 2)
  for (let i = 0; i < 5; i++) {
    await Promise.all([
      host.expect('chat', { roomId, message: `a${i}` }, 'chat'),
      onB.expect('chat', { roomId, message: `b${i}` }, 'chat'),
      onC.expect('chat', { roomId, message: `c${i}` }, 'chat')
    ])
  }
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/v.mp4', currentTime: 3, isPlaying: true }, 'ack')
  for (const client of [onB, onC]) await client.next((e) => e.type === 'sync' && e.data.currentTime >= 3)
  for (const client of [host, onB, onC]) await client.barrier()
  const lastSeq = 2 + 15
  const views = [host, onB, onC].map((client) => new Map(stream(client, roomId).map((e) => [e.seq, JSON.stringify([e.type, e.epoch, e.data])])))
  for (let seq = 3; seq <= lastSeq; seq++) {
    const seen = views.map((v) => v.get(seq))
    t.ok(seen.every((s) => s !== undefined && s === seen[0]), `seq ${seq}: the same event on every node`)
  }
  const rest = await b.http('GET', `/rooms/${roomId}`, { userId: 'ben' })
  t.equal(rest.status, 200)
  t.equal(rest.headers['x-node-id'], 'node-b')
  t.equal(rest.headers['x-room-owner'], 'node-a', 'the creating node owns the room')
  t.same(rest.body.participants, ['ann', 'ben', 'cat'], 'participants from the write-through on every node')
})

t.test('kill -9 of the owner: another node takes the room over, same epoch, nobody connected elsewhere dropped', { skip }, async (t) => {
  const { nodes } = await cluster(t, ['own', 'edge-1', 'edge-2'])
  const [owner, e1, e2] = nodes as [ServerProcess, ServerProcess, ServerProcess]
  const host = await TestClient.connect(e1.wsUrl, { userId: 'hana' }, t)
  const viewer = await TestClient.connect(e2.wsUrl, { userId: 'vic' }, t)
  // The room is created over REST on the owner node, so the owner holds no member of it.
  const made = await owner.http('POST', '/rooms', { userId: 'hana', body: { name: 'failover' } })
  const roomId = made.body.id as string
  await host.expect('join_room', { roomId }, 'room_joined')
  await viewer.expect('join_room', { roomId }, 'room_joined')
  const before = await host.expect('chat', { roomId, message: 'before the crash' }, 'chat')
  await viewer.next((e) => e.type === 'chat' && e.data.message === 'before the crash')

  const killedAt = Date.now()
  owner.kill('SIGKILL')
  await owner.exited
  let after: ReceivedEvent | undefined
  while (after === undefined && Date.now() - killedAt < LEASE_MS + 10_000) {
    const reply = await host.request('chat', { roomId, message: 'after the crash' }, 5000).catch(() => undefined)
    if (reply?.type === 'chat') after = reply
  }
  const tookMs = Date.now() - killedAt
  t.ok(after !== undefined, `a chat went through again after ${tookMs} ms`)
  t.ok(tookMs <= LEASE_MS + 2000 + 1500, `taken over within ROOM_LEASE_MS + 2 s (and a retry): ${tookMs} ms`)
  t.equal(after!.epoch, before.epoch, 'same epoch')
  t.equal(after!.seq, (before.seq as number) + 1, 'the sequence goes on from the history')
  await viewer.next((e) => e.type === 'chat' && e.data.message === 'after the crash', 5000)
  t.equal(host.socket.readyState, 1, 'the members connected elsewhere kept their sockets')
  t.equal(viewer.socket.readyState, 1)
  await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 1000))
  await viewer.barrier()
  t.same(viewer.received('participant_left'), [], 'nobody connected was dropped by the takeover (their graces did not expire)')
  const room = await e2.http('GET', `/rooms/${roomId}`, { userId: 'vic' })
  t.same(room.body.participants, ['hana', 'vic'])
  t.ok(['edge-1', 'edge-2'].includes(String(room.headers['x-room-owner'])), `served by a live node now: ${String(room.headers['x-room-owner'])}`)
})

t.test('kill -9 of an edge: its users\' graces start at the owner, then expire', { skip }, async (t) => {
  const { nodes } = await cluster(t, ['own2', 'edge-x'])
  const [owner, edge] = nodes as [ServerProcess, ServerProcess]
  const host = await TestClient.connect(owner.wsUrl, { userId: 'olga' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'edge dies' }, 'room_created')).data.room.id as string
  const far = await TestClient.connect(edge.wsUrl, { userId: 'far' }, t)
  await far.expect('join_room', { roomId }, 'room_joined')
  await host.nextOfType('participant_joined')
  const killedAt = Date.now()
  edge.kill('SIGKILL')
  await edge.exited
  const left = await host.next((e) => e.type === 'participant_left' && e.data.userId === 'far', GRACE_MS + 10_000)
  const tookMs = Date.now() - killedAt
  t.ok(left !== undefined)
  t.ok(tookMs >= GRACE_MS, `not before a full grace (${tookMs} ms)`)
  t.ok(tookMs <= GRACE_MS + LEASE_MS + 2000 + 1500, `the grace started within ROOM_LEASE_MS + 2 s of the death (${tookMs} ms in all)`)
})

t.test('SIGTERM of the owner hands its rooms over at once; its clients reconnect elsewhere and recover', { skip }, async (t) => {
  const { nodes } = await cluster(t, ['leaving', 'staying'])
  const [leaving, staying] = nodes as [ServerProcess, ServerProcess]
  const host = await TestClient.connect(leaving.wsUrl, { userId: 'hal' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'rolling' }, 'room_created')).data.room.id as string
  const viewer = await TestClient.connect(staying.wsUrl, { userId: 'val' }, t)
  const joined = await viewer.expect('join_room', { roomId }, 'room_joined')
  const last = await host.expect('chat', { roomId, message: 'before the deploy' }, 'chat')
  await viewer.next((e) => e.type === 'chat' && e.data.message === 'before the deploy')
  const stoppedAt = Date.now()
  leaving.kill('SIGTERM')
  t.equal((await host.closed).code, 1012, 'the leaving node closes with 1012')
  const back = await TestClient.connect(staying.wsUrl, { userId: 'hal' }, t)
  const rejoined = await back.expect('join_room', { roomId, since: { epoch: last.epoch, seq: last.seq } }, 'room_joined')
  t.match(rejoined.data, { recovered: true, role: 'host' })
  const next = await back.expect('chat', { roomId, message: 'after the deploy' }, 'chat')
  t.ok(Date.now() - stoppedAt < LEASE_MS, `served again before a lease could have expired (${Date.now() - stoppedAt} ms): handed over, not taken over`)
  t.equal(next.seq, (last.seq as number) + 1)
  await viewer.next((e) => e.type === 'chat' && e.data.message === 'after the deploy')
  t.equal((await leaving.exited).code, 0)
  await viewer.barrier()
  t.same([...viewer.received('participant_left'), ...viewer.received('participant_joined')].filter((e) => (e.seq as number) > (joined.data.seq as number)), [], 'the deploy was announced to nobody')
})
