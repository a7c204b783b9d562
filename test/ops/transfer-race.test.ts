import { asc, eq } from 'drizzle-orm'
import t from 'tap'
import { roomEvents, roomParticipants, rooms } from '../../src/db/schema.js'
import { openServerDatabase, serverDatabase, startServer } from '../helpers/server-process.js'
import { TestClient, type ReceivedEvent } from '../helpers/ws-client.js'

const USERS = Array.from({ length: 10 }, (_, i) => `u${i}`)
/** How many times a client that becomes host acts at once (transfer, or leave and rejoin), all clients together. */
const FOLLOW_UP_TRANSFERS = 30
const REFUSALS = ['NOT_HOST', 'USER_NOT_IN_ROOM', 'NOT_IN_ROOM']

// A server process, then the test, open the database (the embedded one takes seconds, more on a busy machine).
t.setTimeout(240_000)

t.test('50 simultaneous transfer_host with leave/join races leave one host, the same in memory and database, explained by room_events', async (t) => {
  const database = await serverDatabase(t)
  const server = await startServer(t, { database, env: { DISCONNECT_GRACE_MS: '30000' } })

  const clients = new Map<string, TestClient>()
  for (const userId of USERS) clients.set(userId, await TestClient.connect(server.wsUrl, { userId }, t))
  const client = (userId: string): TestClient => clients.get(userId)!
  const created = await client('u0').expect('create_room', { roomName: 'Race' }, 'room_created')
  const roomId = created.data.room.id as string
  for (const userId of USERS.slice(1)) await client(userId).expect('join_room', { roomId }, 'room_joined')
  // Joins last and never acts: nobody hands it the host, so it sees every host change of the race.
  const watcher = await TestClient.connect(server.wsUrl, { userId: 'watcher' }, t)
  await watcher.expect('join_room', { roomId }, 'room_joined')

  const pending: Array<Promise<{ userId: string, type: string, reply: ReceivedEvent }>> = []
  const send = (userId: string, type: string, data: Record<string, unknown>): void => {
    pending.push(client(userId).request(type, { roomId, ...data }, 30_000).then((reply) => ({ userId, type, reply })))
  }
  const transfer = (from: string, to: string): void => { send(from, 'transfer_host', { newHostId: to }) }
  let burst = 0
  const burstTransfer = (from: string, to: string): void => {
    burst++
    transfer(from, to)
  }

  // Whoever becomes host passes it on at once, while the burst is still being handled; every fifth time
  // the new host leaves and comes back instead, so the host is also handed over by leaving.
  const stayers = USERS.filter((u) => !['u0', 'u5', 'u9'].includes(u))
  let followUps = FOLLOW_UP_TRANSFERS
  for (const userId of USERS) {
    client(userId).socket.on('message', (raw) => {
      const event = JSON.parse(raw.toString()) as ReceivedEvent
      if (event.type !== 'host_changed' || event.data.hostId !== userId || followUps <= 0) return
      followUps--
      if (followUps % 5 === 0) {
        send(userId, 'leave_room', {})
        send(userId, 'join_room', {})
      } else {
        transfer(userId, stayers[(stayers.indexOf(userId) + 3) % stayers.length] ?? 'u1')
      }
    })
  }

  // The burst, all written in one tick: 5 transfers from each of the 10 users (50), and between them the
  // host leaves and comes back, u5 leaves and comes back, u9 leaves for good.
  for (const [i, userId] of USERS.entries()) {
    const targets = [1, 2, 3, 4, 5].map((d) => USERS[(i + d) % USERS.length]!)
    if (userId === 'u0') {
      burstTransfer(userId, targets[0]!)
      burstTransfer(userId, targets[1]!)
      send(userId, 'leave_room', {})
      send(userId, 'join_room', {})
      for (const to of targets.slice(2)) burstTransfer(userId, to)
    } else if (userId === 'u5') {
      send(userId, 'leave_room', {})
      send(userId, 'join_room', {})
      for (const to of targets) burstTransfer(userId, to)
    } else if (userId === 'u9') {
      for (const to of targets) burstTransfer(userId, to)
      send(userId, 'leave_room', {})
    } else {
      for (const to of targets) burstTransfer(userId, to)
    }
  }
  t.equal(burst, 50, 'the burst holds 50 transfers')

  // Settled when every reply is in and, after a ping round trip on every socket (so every event sent so far
  // has arrived and triggered whatever it triggers), nothing new was sent.
  const outcomes: Array<{ userId: string, type: string, reply: ReceivedEvent }> = []
  for (;;) {
    while (outcomes.length < pending.length) outcomes.push(...await Promise.all(pending.slice(outcomes.length)))
    for (const c of [...clients.values(), watcher]) await c.barrier()
    if (outcomes.length === pending.length) break
  }

  const transfers = outcomes.filter((o) => o.type === 'transfer_host')
  const succeeded = transfers.filter((o) => o.reply.type === 'host_changed')
  const refused = transfers.filter((o) => o.reply.type === 'error')
  t.equal(succeeded.length + refused.length, transfers.length, 'every transfer got one reply: host_changed or error')
  t.same(refused.filter((o) => !REFUSALS.includes(o.reply.data.code)).map((o) => o.reply.data), [], 'refusals are only the rules at work')
  t.ok(transfers.length >= 50 + 1, `${transfers.length} transfers: ${succeeded.length} done, ${refused.length} refused`)
  t.ok(succeeded.length >= 2, 'the host moved more than once during the race')
  for (const o of outcomes.filter((o) => o.type !== 'transfer_host')) {
    t.equal(o.reply.type, o.type === 'leave_room' ? 'room_left' : 'room_joined', `${o.userId} ${o.type}`)
  }

  // Memory: one host, a participant, and the one every member believes in.
  const memory = (await server.http('GET', `/rooms/${roomId}`, { userId: 'watcher' })).body
  const host = memory.hostId as string
  t.ok(memory.participants.includes(host), `the host ${host} is in the room`)
  t.notOk(memory.participants.includes('u9'), 'u9 left for good')
  const believedHost = (c: TestClient): string => {
    let current = ''
    for (const e of c.events) {
      if (e.type === 'room_created' || e.type === 'room_joined') current = e.data.room.hostId
      if (e.type === 'host_changed') current = e.data.hostId
    }
    return current
  }
  const members = [...clients.values(), watcher].filter((c) => memory.participants.includes(c.name))
  t.same(members.map((c) => believedHost(c)), members.map(() => host), 'every member sees the same host')
  t.equal(members.filter((c) => believedHost(c) === c.name).length, 1, 'exactly one member believes it is the host')
  const seen = watcher.received('host_changed').map((e) => ({ from: e.data.previousHostId, to: e.data.hostId, reason: e.data.reason }))

  server.kill('SIGTERM')
  t.equal((await server.exited).code, 0)

  // Database: the same host and participants, and an audit trail that replays to them.
  const stored = await openServerDatabase(t, database)
  const [row] = await stored.db.select({ hostId: rooms.hostId }).from(rooms).where(eq(rooms.id, roomId))
  t.equal(row?.hostId, host, 'rooms.host_id is the host held in memory')
  const storedMembers = await stored.db.select({ userId: roomParticipants.userId }).from(roomParticipants)
    .where(eq(roomParticipants.roomId, roomId)).orderBy(asc(roomParticipants.joinedAt), asc(roomParticipants.seq))
  t.same(storedMembers.map((m) => m.userId), memory.participants, 'room_participants is the membership held in memory, in join order')

  const trail = await stored.db.select({ type: roomEvents.type, actorId: roomEvents.actorId, data: roomEvents.data })
    .from(roomEvents).where(eq(roomEvents.roomId, roomId)).orderBy(asc(roomEvents.id))
  const present = new Set<string>()
  let replayedHost = ''
  const problems: string[] = []
  const changes: Array<{ from: unknown, to: unknown, reason: unknown }> = []
  for (const [i, e] of trail.entries()) {
    if (e.type === 'created') replayedHost = e.actorId ?? ''
    if (e.type === 'joined') present.add(e.actorId ?? '')
    if (e.type === 'left') present.delete(e.actorId ?? '')
    if (e.type !== 'host_changed') continue
    const { from, to, reason } = e.data as { from: string, to: string, reason: string }
    changes.push({ from, to, reason })
    if (from !== replayedHost) problems.push(`#${i}: ${from} -> ${to} but the host was ${replayedHost}`)
    if (!present.has(to)) problems.push(`#${i}: ${to} became host while not in the room`)
    if (reason === 'transfer' && e.actorId !== from) problems.push(`#${i}: transfer by ${String(e.actorId)}, not the host ${from}`)
    if (reason === 'host_left' && present.has(from)) problems.push(`#${i}: host_left but ${from} is still in the room`)
    replayedHost = to
  }
  t.same(problems, [], 'each host change starts from the host of the moment and goes to someone present')
  t.equal(replayedHost, host, 'replaying room_events ends at the host in memory and in rooms.host_id')
  t.same([...present].sort(), [...memory.participants].sort(), 'replaying joined/left ends at the participants')
  t.equal(changes.filter((c) => c.reason === 'transfer').length, succeeded.length, 'one host_changed row per acknowledged transfer')
  t.same(changes, seen, 'the trail lists the host changes in the order members saw them')
  t.ok(changes.some((c) => c.reason === 'host_left'), 'the host was also handed over by leaving during the race')
})
