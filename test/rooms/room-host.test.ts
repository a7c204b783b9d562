/**
 * The owner-side room rules with an in-memory store and a fake clock: positions, write-through before
 * delivery, catch-up, chat history and retries, graces, TTLs, viewer reports, unknown write outcomes and
 * bounded waits. Milliseconds, no database, no sockets.
 */
import t from 'tap'
import { serverEventProblem, type ServerEvent } from '@watch-party/protocol'
import { AppError } from '../../src/errors.js'
import { RoomHost } from '../../src/rooms/room-host.js'
import type { Actor, Responder, RoomEventSink, RoomLimits } from '../../src/rooms/room-ports.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { FakeRoomStore } from '../helpers/fake-room-store.js'

const LIMITS: RoomLimits = {
  disconnectGraceMs: 10_000,
  emptyRoomTtlMs: 300_000,
  maxRoomParticipants: 100,
  maxRoomsPerHost: 10,
  playbackFlushMs: 1000,
  maxRoomsPerConnection: 10,
  roomHistorySize: 500,
  chatHistorySize: 50,
  replayMaxBytes: 262_144,
  storeWaitMs: 2000,
  allowedVideoSchemes: ['http', 'https']
}

const silent = { info () {}, warn () {}, error () {} }

interface Delivery { to: 'room' | string, except?: string, event: ServerEvent, storedSeqs: number[] }

/** A sink that records what was published, and what the store held for the room at that moment. */
function recordingSink (store: FakeRoomStore): { sink: RoomEventSink, deliveries: Delivery[] } {
  const deliveries: Delivery[] = []
  const storedSeqs = (roomId: string): number[] => store.rooms.get(roomId)?.stream.map((e) => e.seq) ?? []
  const sink: RoomEventSink = {
    publish (roomId, event, except) { deliveries.push({ to: 'room', except, event, storedSeqs: storedSeqs(roomId) }) },
    sendTo (connectionId, event) { deliveries.push({ to: connectionId, event, storedSeqs: [] }) },
    subscribe () {},
    unsubscribe () {},
    dropRoom () {}
  }
  return { sink, deliveries }
}

/** A connection's answers: its one reply and any frames sent after it. */
function responder (): Responder & { replies: ServerEvent[], sent: ServerEvent[] } {
  const replies: ServerEvent[] = []
  const sent: ServerEvent[] = []
  return { replies, sent, reply (e) { replies.push(e) }, send (e) { sent.push(e) } }
}

async function setup (limits: Partial<RoomLimits> = {}) {
  const clock = new FakeClock()
  const store = new FakeRoomStore(() => clock.now())
  const { sink, deliveries } = recordingSink(store)
  const host = new RoomHost(store, clock, { ...LIMITS, ...limits }, silent, sink)
  await host.start()
  let n = 0
  const actor = (userId: string): Actor => ({ userId, connectionId: `${userId}-c${++n}` })
  const create = async (who: Actor): Promise<string> => {
    const res = responder()
    await host.createAndJoin(who, 'party', res)
    const reply = res.replies[0]
    if (reply?.type !== 'room_created') throw new Error(`create_room answered ${JSON.stringify(reply)}`)
    return reply.data.room.id
  }
  const join = async (who: Actor, roomId: string, since?: { epoch: string, seq: number }) => {
    const res = responder()
    await host.join(who, roomId, since, res)
    return res
  }
  const chat = async (who: Actor, roomId: string, message: string, requestId?: string) => {
    const res = responder()
    await host.chat(who, roomId, message, requestId, res)
    return res.replies[0]!
  }
  t.teardown(async () => { await host.stop() })
  return { clock, store, host, deliveries, actor, create, join, chat }
}

const stream = (deliveries: Delivery[]) => deliveries.filter((d) => d.event.seq !== undefined).map((d) => d.event)

t.test('stream events get gapless positions from 1, and each is stored before it is published', async (t) => {
  const { host, deliveries, actor, create, join, chat } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const carol = actor('carol')
  const roomId = await create(alice)
  const joined = await join(bob, roomId)
  t.equal(joined.replies[0]?.type === 'room_joined' && joined.replies[0].data.seq, 1, 'the snapshot includes the joiner\'s own participant_joined')
  await join(carol, roomId)
  await chat(bob, roomId, 'hi')
  await host.leave(alice, roomId, responder())
  const events = stream(deliveries)
  t.same(events.map((e) => [e.type, e.seq]), [['participant_joined', 1], ['participant_joined', 2], ['chat', 3], ['participant_left', 4], ['host_changed', 5]])
  t.ok(events.every((e) => e.epoch === events[0]!.epoch && e.channel === `room-${roomId}`), 'one epoch, the room channel')
  for (const d of deliveries.filter((d) => d.event.seq !== undefined)) {
    t.ok(d.storedSeqs.includes(d.event.seq!), `${d.event.type} ${d.event.seq} was in the history before anyone received it`)
    t.equal(serverEventProblem(d.event), undefined, 'keeps the protocol')
  }
  const handover = events[4]
  t.match(handover, { type: 'host_changed', data: { hostId: 'bob', previousHostId: 'alice', reason: 'host_left' } }, 'the longest-present remaining participant takes over')
})

t.test('a failed write changes nothing: no position used, nothing published, memory as it was', async (t) => {
  const { host, store, deliveries, actor, create, join, chat } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const roomId = await create(alice)
  store.failNextWrites(1)
  await t.rejects(join(bob, roomId), { code: 'SERVICE_UNAVAILABLE' })
  t.same(stream(deliveries), [], 'nothing published')
  t.same(host.live(roomId)?.participants.has('bob'), false, 'not in memory')
  const again = await join(bob, roomId)
  t.equal(again.replies[0]?.type === 'room_joined' && again.replies[0].data.seq, 1, 'the next write takes seq 1: nothing was handed out')
  const line = await chat(bob, roomId, 'after')
  t.equal(line.seq, 2)
})

t.test('a write whose COMMIT reply was lost: the room is read again, the stored event published, no position reused', async (t) => {
  const { host, store, deliveries, actor, create, join, chat } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const roomId = await create(alice)
  await join(bob, roomId)
  store.loseNextCommitReply()
  await t.rejects(chat(bob, roomId, 'lost reply'), { code: 'SERVICE_UNAVAILABLE' }, 'the sender learns it failed')
  t.equal(host.live(roomId)?.stale, true, 'memory knows it may be behind')
  const next = await chat(alice, roomId, 'next')
  t.equal(next.seq, 3, 'the next chat takes the next free position')
  const published = stream(deliveries).map((e) => [e.type, e.seq, (e.data as { message?: string }).message])
  t.same(published, [['participant_joined', 1, undefined], ['chat', 2, 'lost reply'], ['chat', 3, 'next']], 'the committed line reached everyone, in order, before the next one')
  t.same(store.rooms.get(roomId)!.stream.map((e) => e.seq), [1, 2, 3])
})

t.test('a transfer whose COMMIT reply was lost does not wedge the room', async (t) => {
  const { host, store, deliveries, actor, create, join, clock } = await setup({ disconnectGraceMs: 1000 })
  const alice = actor('alice')
  const bob = actor('bob')
  const roomId = await create(alice)
  await join(bob, roomId)
  store.loseNextCommitReply()
  await t.rejects(host.transferHost(alice, roomId, 'bob', responder()), { code: 'SERVICE_UNAVAILABLE' })
  // The database has bob as host; memory still says alice. The next operation reads the truth first.
  await t.rejects(host.transferHost(alice, roomId, 'bob', responder()), { code: 'NOT_HOST' }, 'alice is not host any more')
  t.equal(host.live(roomId)?.hostId, 'bob')
  t.ok(stream(deliveries).some((e) => e.type === 'host_changed' && e.seq === 2), 'the committed host_changed was published')
  // Bob's grace expiry hands the room back with a compare-and-set on the true host: it completes.
  host.disconnect(bob)
  await host.idle()
  clock.advance(1000)
  await host.idle()
  t.equal(host.live(roomId)?.hostId, 'alice')
  t.equal(store.rooms.get(roomId)?.hostId, 'alice')
})

t.test('a grace expiry whose compare-and-set finds another host reads the room again instead of retrying for ever', async (t) => {
  const { host, store, actor, create, join, clock } = await setup({ disconnectGraceMs: 1000 })
  const alice = actor('alice')
  const bob = actor('bob')
  const carol = actor('carol')
  const roomId = await create(alice)
  await join(bob, roomId)
  await join(carol, roomId)
  store.rooms.get(roomId)!.hostId = 'carol' // changed behind this process's back
  host.disconnect(alice)
  await host.idle()
  clock.advance(1000)
  await host.idle()
  t.same(store.rooms.get(roomId)!.participants.map((p) => p.userId), ['bob', 'carol'], 'alice left')
  t.equal(store.rooms.get(roomId)!.hostId, 'carol', 'carol stays host (she was host in the database)')
  t.equal(host.live(roomId)?.hostId, 'carol')
  t.equal(store.writes.filter((w) => w === 'removeParticipant').length, 2, 'one refused compare-and-set, then one write on the truth')
})

t.test('a rejoin within the grace broadcasts nothing; an expired grace hands the host role on', async (t) => {
  const { host, deliveries, actor, create, join, clock } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const roomId = await create(alice)
  await join(bob, roomId)
  host.disconnect(alice)
  await host.idle()
  clock.advance(9000)
  const back = actor('alice')
  const res = await join(back, roomId)
  t.match(res.replies[0], { type: 'room_joined', data: { role: 'host', seq: 1 } })
  clock.advance(5000)
  await host.idle()
  t.same(stream(deliveries).map((e) => e.type), ['participant_joined'], 'no participant_left, no participant_joined')
  host.disconnect(back)
  await host.idle()
  clock.advance(10_000)
  await host.idle()
  t.same(stream(deliveries).map((e) => [e.type, e.seq]), [['participant_joined', 1], ['participant_left', 2], ['host_changed', 3]])
  t.match(stream(deliveries)[2], { data: { reason: 'host_disconnected', hostId: 'bob' } })
})

t.test('an empty room closes after its TTL with a room_closed stream event', async (t) => {
  const { host, store, deliveries, actor, create, clock } = await setup({ emptyRoomTtlMs: 60_000 })
  const alice = actor('alice')
  const roomId = await create(alice)
  await host.leave(alice, roomId, responder())
  clock.advance(59_999)
  await host.idle()
  t.equal(store.rooms.get(roomId)?.isActive, true)
  clock.advance(1)
  await host.idle()
  t.equal(store.rooms.get(roomId)?.isActive, false)
  t.same(stream(deliveries).map((e) => [e.type, e.seq]), [['participant_left', 1], ['room_closed', 2]])
  t.equal(host.live(roomId), undefined, 'memory freed')
})

t.test('catch-up: exactly the missed events after the reply, or the snapshot only', async (t) => {
  const { deliveries, actor, create, join, chat } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const roomId = await create(alice)
  const first = await join(bob, roomId)
  const snapshot = first.replies[0]!
  if (snapshot.type !== 'room_joined') throw new Error('not joined')
  const { epoch, seq } = snapshot.data
  await chat(alice, roomId, 'one')
  await chat(alice, roomId, 'two')
  await join(actor('carol'), roomId)

  const caught = await join(actor('bob'), roomId, { epoch, seq })
  t.match(caught.replies[0], { type: 'room_joined', data: { recovered: true, seq: 4 } })
  t.same(caught.sent, stream(deliveries).filter((e) => e.seq! > seq), 'the missed events, exactly as first sent, in order')

  for (const [what, since] of [['a wrong epoch', { epoch: 'other', seq }], ['a future seq', { epoch, seq: 99 }]] as const) {
    const res = await join(actor('bob'), roomId, since)
    t.match(res.replies[0], { type: 'room_joined', data: { recovered: false } }, what)
    t.same(res.sent, [], `${what}: nothing replayed`)
  }
  const upToDate = await join(actor('bob'), roomId, { epoch, seq: 4 })
  t.match(upToDate.replies[0], { data: { recovered: true } })
  t.same(upToDate.sent, [], 'nothing missed, nothing replayed')
  const plain = await join(actor('bob'), roomId)
  t.notOk('recovered' in (plain.replies[0]!.data as object), 'without since, recovered is absent')
})

t.test('catch-up refuses a gap older than the history, and one larger than REPLAY_MAX_BYTES', async (t) => {
  const { host, actor, create, join, chat } = await setup({ roomHistorySize: 10, chatHistorySize: 2, replayMaxBytes: 2000 })
  const alice = actor('alice')
  const roomId = await create(alice)
  const epoch = host.live(roomId)!.epoch
  for (let i = 0; i < 9; i++) await chat(alice, roomId, `line ${i} ${'x'.repeat(100)}`)
  const big = await join(actor('bob'), roomId, { epoch, seq: 0 })
  t.match(big.replies[0], { data: { recovered: false } }, '9 lines of ~300 bytes: over the byte cap')
  t.same(big.sent, [])
  for (let i = 0; i < 200; i++) await chat(alice, roomId, `more ${i}`)
  await new Promise((resolve) => setImmediate(resolve)) // the prune runs behind
  const old = await join(actor('carol'), roomId, { epoch, seq: 5 })
  t.match(old.replies[0], { data: { recovered: false } }, 'a gap older than the history')
  const recent = await join(actor('dave'), roomId, { epoch, seq: host.live(roomId)!.lastSeq - 2 })
  t.match(recent.replies[0], { data: { recovered: true } })
  t.same(recent.sent.map((e) => e.type), ['chat', 'participant_joined', 'participant_joined'], 'the last line, carol\'s join, then the joiner\'s own participant_joined')
})

t.test('chat history: the last CHAT_HISTORY_SIZE whole chat events, however many joins came since, also after a restart', async (t) => {
  const clock = new FakeClock()
  const store = new FakeRoomStore(() => clock.now())
  const limits = { ...LIMITS, chatHistorySize: 3, roomHistorySize: 10, maxRoomParticipants: 1000 }
  const host = new RoomHost(store, clock, limits, silent, recordingSink(store).sink)
  await host.start()
  const alice = { userId: 'alice', connectionId: 'a1' }
  const res = responder()
  await host.createAndJoin(alice, 'party', res)
  const roomId = (res.replies[0] as { data: { room: { id: string } } }).data.room.id
  for (let i = 1; i <= 5; i++) await host.chat(alice, roomId, `line ${i}`, undefined, responder())
  for (let i = 0; i < 150; i++) await host.join({ userId: `u${i}`, connectionId: `u${i}` }, roomId, undefined, responder())
  await new Promise((resolve) => setImmediate(resolve))
  const joined = responder()
  await host.join({ userId: 'late', connectionId: 'late' }, roomId, undefined, joined)
  const chat = (joined.replies[0] as { data: { chat: Array<{ seq: number, data: { message: string } }> } }).data.chat
  t.same(chat.map((c) => c.data.message), ['line 3', 'line 4', 'line 5'])
  t.ok(store.rooms.get(roomId)!.stream.length <= 10 + 3 + 2, `the stored stream was pruned to about the history size (${store.rooms.get(roomId)!.stream.length} of 155 events kept)`)
  await host.stop()

  const restarted = new RoomHost(store, clock, limits, silent, recordingSink(store).sink)
  await restarted.start()
  const after = responder()
  await restarted.join({ userId: 'later', connectionId: 'later' }, roomId, undefined, after)
  t.same((after.replies[0] as { data: { chat: Array<{ data: { message: string } }> } }).data.chat.map((c) => c.data.message), ['line 3', 'line 4', 'line 5'], 'read back at start')
  t.same((after.replies[0] as { data: { epoch: string } }).data.epoch, host.live(roomId)?.epoch ?? store.rooms.get(roomId)!.epoch, 'same epoch')
  await restarted.stop()
})

t.test('a chat retried with the same request id is answered with the stored event, not stored twice', async (t) => {
  const { store, actor, create, chat, clock } = await setup()
  const alice = actor('alice')
  const roomId = await create(alice)
  const first = await chat(alice, roomId, 'hello', 'req-1')
  const retry = await chat(alice, roomId, 'hello', 'req-1')
  t.same(retry, first)
  t.equal(store.rooms.get(roomId)!.stream.length, 1)
  const otherUser = actor('alice') // another connection of the same user: a reconnect
  const afterReconnect = await chat(otherUser, roomId, 'hello', 'req-1').catch((err: unknown) => err)
  t.ok(afterReconnect instanceof AppError, 'a connection that has not joined may not chat')
  clock.advance(61_000)
  const late = await chat(alice, roomId, 'hello', 'req-1')
  t.not(late.seq, first.seq, 'after the retry window it is a new line')
})

t.test('host_sync: updatedAt is the host\'s `at`, clamped to the last 5 s and never in the future', async (t) => {
  const { host, deliveries, actor, create, clock } = await setup()
  const alice = actor('alice')
  const roomId = await create(alice)
  const now = clock.now()
  const sync = async (at?: number) => {
    await host.hostSync(alice, roomId, { videoUrl: 'https://example.com/v.mp4', currentTime: 10, isPlaying: false, at }, responder())
    return host.live(roomId)!.playback!.updatedAt
  }
  t.equal(await sync(now - 1200), now - 1200)
  t.equal(await sync(now - 60_000), now - 5000)
  t.equal(await sync(now + 5000), now)
  t.equal(await sync(), now)
  await host.hostSync(alice, roomId, { videoUrl: 'https://example.com/v.mp4', currentTime: 10, isPlaying: true, at: now - 2000 }, responder())
  const last = deliveries.at(-1)!.event
  t.match(last, { type: 'sync', data: { currentTime: 12, updatedAt: now } }, 'viewers get the position extrapolated from the host\'s sample to now')
  await t.rejects(host.hostSync(alice, roomId, { videoUrl: 'javascript:alert(1)', currentTime: 0, isPlaying: false }, responder()), { code: 'VALIDATION_FAILED' })
})

t.test('viewer_status: drift against the host at the report\'s time, to the host only, at most once a second, rows expire', async (t) => {
  const { host, deliveries, actor, create, join, clock } = await setup()
  const alice = actor('alice')
  const bob = actor('bob')
  const carol = actor('carol')
  const roomId = await create(alice)
  await join(bob, roomId)
  await join(carol, roomId)
  const t0 = clock.now()
  await host.hostSync(alice, roomId, { videoUrl: 'https://example.com/v.mp4', currentTime: 100, isPlaying: true }, responder())
  const statuses = () => deliveries.filter((d) => d.event.type === 'viewer_status')
  await host.playbackReport(bob, roomId, { currentTime: 102.25, isPlaying: true, at: t0 + 2000 }, responder())
  clock.advance(0)
  t.equal(statuses().length, 1)
  t.equal(statuses()[0]!.to, alice.connectionId, 'to the host\'s connection only')
  t.match(statuses()[0]!.event, { data: { roomId, viewers: [{ userId: 'bob', buffering: false, at: t0 + 2000 }] } })
  const row = (statuses()[0]!.event.data as { viewers: Array<{ drift: number }> }).viewers[0]!
  t.ok(Math.abs(row.drift - 0.25) < 1e-9, `bob is 0.25 s ahead (${row.drift})`)
  await host.playbackReport(carol, roomId, { currentTime: 101, isPlaying: true, buffering: true, at: t0 + 1500 }, responder())
  await host.playbackReport(alice, roomId, { currentTime: 0, isPlaying: true, at: t0 }, responder())
  clock.advance(999)
  t.equal(statuses().length, 1, 'not more than once a second')
  clock.advance(1)
  t.equal(statuses().length, 2)
  t.same((statuses()[1]!.event.data as { viewers: Array<{ userId: string }> }).viewers.map((v) => v.userId), ['bob', 'carol'], 'the host\'s own report is not listed')
  t.match((statuses()[1]!.event.data as { viewers: Array<{ drift: number, buffering: boolean }> }).viewers[1], { buffering: true, drift: -0.5 })
  clock.advance(20_000)
  t.same((statuses().at(-1)!.event.data as { viewers: unknown[] }).viewers, [], 'rows expire after 10 s and the host hears so')
  const count = statuses().length
  clock.advance(60_000)
  t.equal(statuses().length, count, 'nothing more while nothing changes')
})

t.test('a write that waited STORE_WAIT_MS behind the room\'s other writes answers SERVICE_UNAVAILABLE at once', async (t) => {
  const { host, store, actor, create, clock } = await setup({ storeWaitMs: 2000 })
  const alice = actor('alice')
  const roomId = await create(alice)
  let release = (): void => {}
  const original = store.appendChat.bind(store)
  store.appendChat = async (id, event) => {
    await new Promise<void>((resolve) => { release = resolve })
    return await original(id, event)
  }
  const slow = host.chat(alice, roomId, 'slow', undefined, responder())
  await new Promise((resolve) => setImmediate(resolve))
  const queued = host.chat(alice, roomId, 'queued', undefined, responder())
  const syncRes = responder()
  await host.hostSync(alice, roomId, { videoUrl: 'https://example.com/v.mp4', currentTime: 1, isPlaying: true }, syncRes)
  t.equal(syncRes.replies[0]?.type, 'ack', 'sync does not wait behind the pending write')
  clock.advance(2500)
  release()
  await slow
  await t.rejects(queued, { code: 'SERVICE_UNAVAILABLE' })
})
