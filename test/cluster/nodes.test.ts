/**
 * Several server processes on one PostgreSQL database and one Redis (cluster mode): one order of events per
 * room wherever its members are connected, takeover of a dead owner's rooms with the same epoch and nobody
 * dropped, an edge's death turning its users' connections into graces, and hand-over at SIGTERM.
 * Each file uses its own Redis prefix, so files run in parallel against the machine's one Redis.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { serverDatabase, startServer, type ServerDatabase, type ServerProcess } from '../helpers/server-process.js'
import { canonicalJson, TestClient, type ReceivedEvent, type Teardown } from '../helpers/ws-client.js'

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
  const views = [host, onB, onC].map((client) => new Map(stream(client, roomId).map((e) => [e.seq, canonicalJson([e.type, e.epoch, e.data])])))
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
    const reply = await host.request('chat', { roomId, message: 'after the crash' }, 10_000).catch(() => undefined)
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
  t.equal(next.seq, (last.seq as number) + 1)
  t.ok(leaving.logs.some((l) => l.msg === 'room handed over' && l.roomId === roomId), `handed over, not left to expire (served again ${Date.now() - stoppedAt} ms after the SIGTERM)`)
  await viewer.next((e) => e.type === 'chat' && e.data.message === 'after the deploy')
  t.equal((await leaving.exited).code, 0)
  await viewer.barrier()
  t.same([...viewer.received('participant_left'), ...viewer.received('participant_joined')].filter((e) => (e.seq as number) > (joined.data.seq as number)), [], 'the deploy was announced to nobody')
})

t.test('a join storm spread over three nodes lands each join once and holds the room cap', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const nodes = await Promise.all(['s1', 's2', 's3'].map(async (name) => await startServer(t, {
    database,
    env: { REDIS_URL, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: String(LEASE_MS), MAX_ROOM_PARTICIPANTS: '10' }
  })))
  const host = await TestClient.connect(nodes[0]!.wsUrl, { userId: 'storm-host' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'storm' }, 'room_created')).data.room.id as string
  const joiners = await Promise.all(Array.from({ length: 24 }, async (_v, i) => await TestClient.connect(nodes[i % 3]!.wsUrl, { userId: `storm-${i}` }, t)))
  const answers = await Promise.all(joiners.map(async (c) => await c.request('join_room', { roomId }, 20_000)))
  const joined = answers.filter((a) => a.type === 'room_joined')
  t.equal(joined.length, 9, 'nine joined: the host and nine make ten')
  t.ok(answers.every((a) => a.type === 'room_joined' || a.data.code === 'ROOM_FULL'), `the rest were refused ROOM_FULL: ${JSON.stringify([...new Set(answers.map((a) => a.data.code ?? a.type))])}`)
  t.same(joined.map((j) => j.data.seq).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'each join got its own position, none twice')
  await host.barrier()
  t.equal(host.received('participant_joined').length, 9, 'each join was announced once')
  const stored = await nodes[2]!.http('GET', `/rooms/${roomId}`, { userId: 'storm-host' })
  t.equal(stored.body.participants.length, 10, 'the database holds ten participants')
})

t.test('a rolling restart of every node in turn: the party goes on, nobody leaves, every client recovers', { skip }, async (t) => {
  const database = await serverDatabase(t)
  const prefix = `wp-test-${process.pid}-${randomBytes(3).toString('hex')}:`
  const env = (name: string) => ({ REDIS_URL, REDIS_PREFIX: prefix, NODE_ID: name, ROOM_LEASE_MS: String(LEASE_MS), DISCONNECT_GRACE_MS: String(GRACE_MS) })
  const nodes: ServerProcess[] = await Promise.all(['r1', 'r2', 'r3'].map(async (name) => await startServer(t, { database, env: env(name) })))
  const users = ['rh', 'ra', 'rb']
  const clients = new Map<string, { client: TestClient, node: number }>()
  const host = await TestClient.connect(nodes[0]!.wsUrl, { userId: 'rh' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'rolling restart' }, 'room_created')).data.room.id as string
  clients.set('rh', { client: host, node: 0 })
  for (const [i, user] of ['ra', 'rb'].entries()) {
    const client = await TestClient.connect(nodes[i + 1]!.wsUrl, { userId: user }, t)
    await client.expect('join_room', { roomId }, 'room_joined')
    clients.set(user, { client, node: i + 1 })
  }
  const everySeq = new Map<string, Map<number, string>>(users.map((u) => [u, new Map()]))
  const record = (user: string, client: TestClient): void => {
    for (const e of stream(client, roomId)) everySeq.get(user)!.set(e.seq as number, canonicalJson([e.type, e.epoch, e.data]))
  }
  let line = 0
  const chatRound = async (): Promise<void> => {
    for (const user of users) {
      const { client } = clients.get(user)!
      await client.expect('chat', { roomId, message: `${user} ${line++}` }, 'chat')
    }
  }
  await chatRound()
  for (let restart = 0; restart < 3; restart++) {
    const old = nodes[restart]!
    old.kill('SIGTERM')
    const survivors = [0, 1, 2].filter((i) => i !== restart)
    // Clients of the stopping node reconnect to a surviving one and rejoin with what they last saw.
    for (const user of users) {
      const entry = clients.get(user)!
      if (entry.node !== restart) continue
      t.equal((await entry.client.closed).code, 1012, `${user} was told to reconnect`)
      record(user, entry.client)
      const last = stream(entry.client, roomId).at(-1)!
      const to = survivors[users.indexOf(user) % survivors.length]!
      const client = await TestClient.connect(nodes[to]!.wsUrl, { userId: user }, t)
      const rejoined = await client.expect('join_room', { roomId, since: { epoch: last.epoch, seq: last.seq } }, 'room_joined')
      t.equal(rejoined.data.recovered, true, `${user} recovered after the restart of node ${restart + 1}`)
      clients.set(user, { client, node: to })
    }
    t.equal((await old.exited).code, 0, `node ${restart + 1} stopped cleanly`)
    nodes[restart] = await startServer(t, { database, env: env(`r${restart + 1}-again`) })
    await chatRound()
  }
  // Events travel from the owner through Redis: wait for the last line itself (a ping answered by the
  // client's own node says nothing about what is still on its way from the owner).
  const lastLine = `${users.at(-1)!} ${line - 1}`
  for (const user of users) {
    const { client } = clients.get(user)!
    await client.next((e) => e.type === 'chat' && e.data.message === lastLine, 10_000)
    record(user, client)
    t.same(client.events.filter((e) => e.type === 'participant_left'), [], `${user} saw nobody leave`)
  }
  const lastSeq = Math.max(...[...everySeq.values()].map((m) => Math.max(...m.keys())))
  for (let seq = 3; seq <= lastSeq; seq++) {
    const seen = users.map((u) => everySeq.get(u)!.get(seq))
    t.ok(seen.every((s) => s !== undefined && s === seen[0]), `seq ${seq}: every client has it, the same everywhere`, { seen: Object.fromEntries(users.map((u, i) => [u, seen[i] ?? null])) })
  }
  t.equal(lastSeq, 2 + 3 * 4, 'two joins and twelve lines: no event lost, none added')
})
