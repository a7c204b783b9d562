/**
 * Rooms against a fake socket: state from the snapshot and the stream, read-only; duplicates dropped by seq;
 * a gap or another epoch makes the room rejoin with since; a recovered rejoin emits what was missed (each chat
 * line once), an unrecovered one a reset; reconnects rejoin every room before anything else is sent.
 */
import t from 'tap'
import { WatchPartyClient, type WatchPartyRoom } from '@watch-party/client'
import { FakeClock } from '../helpers/fake-clock.js'
import { ROOM_ID, chatEvent, fakeServer, roomShape, streamEvent, type FakeSocket } from './helpers/fake-socket.js'

async function joined (options: { seq?: number, epoch?: string, chat?: object[], participants?: string[] } = {}) {
  const server = fakeServer()
  const clock = new FakeClock()
  const client = new WatchPartyClient({ url: 'ws://server.test/ws', userId: 'alice', WebSocket: server.WebSocket, timers: clock, now: () => clock.now(), random: () => 0, clock: { pings: 1, intervalMs: 3_600_000 } })
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept({ userId: 'alice', serverTime: clock.now() })
  const joining = client.joinRoom(ROOM_ID)
  const request = await socket.nextSent('join_room')
  t.same(request.data, { roomId: ROOM_ID }, 'a first join has no since')
  socket.reply(request, {
    type: 'room_joined',
    channel: `room-${ROOM_ID}`,
    data: { room: roomShape({ participants: options.participants ?? ['alice', 'bob'] }), role: 'host', serverTime: clock.now(), seq: options.seq ?? 2, epoch: options.epoch ?? 'e1', chat: options.chat ?? [] }
  })
  const room = await joining
  return { server, clock, client, socket, room }
}

/** Replies to the next join_room with a snapshot; returns the request. */
async function answerJoin (socket: FakeSocket, data: Record<string, unknown>, room: Record<string, unknown> = {}) {
  const request = await socket.nextSent('join_room')
  socket.reply(request, { type: 'room_joined', channel: `room-${ROOM_ID}`, data: { room: roomShape({ participants: ['alice', 'bob'], ...room }), role: 'host', serverTime: 0, chat: [], ...data } })
  return request
}

function record (room: WatchPartyRoom): string[] {
  const seen: string[] = []
  room.on('chat', (line) => { seen.push(`chat:${line.message}${line.replayed ? ' (replayed)' : ''}`) })
  room.on('participant_joined', (e) => { seen.push(`joined:${e.userId}${e.replayed ? ' (replayed)' : ''}`) })
  room.on('participant_left', (e) => { seen.push(`left:${e.userId}${e.replayed ? ' (replayed)' : ''}`) })
  room.on('host_changed', (e) => { seen.push(`host:${e.hostId}`) })
  room.on('recovered', ({ events }) => { seen.push(`recovered:${events.map((e) => e.seq).join(',')}`) })
  room.on('reset', ({ reason }) => { seen.push(`reset:${reason}`) })
  room.on('closed', ({ reason }) => { seen.push(`closed:${reason}`) })
  return seen
}

t.test('the snapshot is the state, frozen; stream events keep it current, in seq order', async (t) => {
  const history = [chatEvent(1, 'earlier')]
  const { socket, room, client } = await joined({ chat: history })
  t.equal(room.id, ROOM_ID)
  t.same(room.participants, ['alice', 'bob'])
  t.equal(room.isHost, true)
  t.same(room.chat.map((l) => l.message), ['earlier'], 'the chat history of room_joined')
  t.same(room.position, { epoch: 'e1', seq: 2 })
  t.ok(Object.isFrozen(room.state) && Object.isFrozen(room.participants), 'read-only')
  const before = room.state
  const seen = record(room)
  socket.deliver(streamEvent('participant_joined', 3, { userId: 'carol' }))
  socket.deliver(chatEvent(4, 'hello'))
  socket.deliver(streamEvent('host_changed', 5, { hostId: 'bob', previousHostId: 'alice', reason: 'transfer' }))
  socket.deliver(streamEvent('participant_left', 6, { userId: 'carol' }))
  t.same(seen, ['joined:carol', 'chat:hello', 'host:bob', 'left:carol'])
  t.same(room.participants, ['alice', 'bob'])
  t.equal(room.hostId, 'bob')
  t.equal(room.isHost, false)
  t.same(room.chat.map((l) => [l.message, l.seq]), [['earlier', 1], ['hello', 4]])
  t.same(room.position, { epoch: 'e1', seq: 6 })
  t.not(room.state, before, 'each change is a new state object')
  t.same(before.participants, ['alice', 'bob'], 'an old state is never mutated')
  client.close()
})

t.test('a duplicate seq is dropped', async (t) => {
  const { socket, room, client } = await joined()
  const seen = record(room)
  const line = chatEvent(3, 'once')
  socket.deliver(line)
  socket.deliver(line)
  socket.deliver(chatEvent(2, 'old'))
  t.same(seen, ['chat:once'])
  t.equal(room.chat.length, 1)
  client.close()
})

t.test('a gap: the room rejoins with since, drops what arrives meanwhile, and recovers the missed events once each', async (t) => {
  const { socket, room, client } = await joined({ seq: 2 })
  const seen = record(room)
  socket.deliver(chatEvent(3, 'three'))
  const skipped = chatEvent(4, 'four')
  socket.deliver(chatEvent(5, 'five')) // 4 was lost
  const rejoin = await socket.nextSent('join_room')
  t.same(rejoin.data, { roomId: ROOM_ID, since: { epoch: 'e1', seq: 3 } }, 'since: the last seq applied')
  socket.deliver(chatEvent(6, 'six')) // arrives before the reply: the replay will bring it
  socket.reply(rejoin, { type: 'room_joined', channel: `room-${ROOM_ID}`, data: { room: roomShape({ participants: ['alice', 'bob'] }), role: 'host', serverTime: 0, seq: 6, epoch: 'e1', recovered: true, chat: [chatEvent(3, 'three'), skipped, chatEvent(5, 'five')] } })
  socket.deliver(skipped)
  socket.deliver(chatEvent(5, 'five'))
  socket.deliver(chatEvent(6, 'six'))
  socket.deliver(chatEvent(7, 'seven'))
  t.same(seen, ['chat:three', 'chat:four (replayed)', 'chat:five (replayed)', 'chat:six (replayed)', 'recovered:4,5,6', 'chat:seven'])
  t.same(room.chat.map((l) => l.seq), [3, 4, 5, 6, 7], 'every line once, in order')
  client.close()
})

t.test('a rejoin that is not recovered: the snapshot becomes the state and reset is emitted', async (t) => {
  const { socket, room, client } = await joined({ seq: 2, chat: [chatEvent(2, 'two')] })
  const seen = record(room)
  socket.deliver(chatEvent(9, 'nine'))
  await answerJoin(socket, { seq: 40, epoch: 'e1', recovered: false, chat: [chatEvent(2, 'two'), chatEvent(39, 'thirty-nine')] }, { participants: ['alice', 'dave'] })
  t.same(seen, ['reset:not_recovered'])
  t.same(room.participants, ['alice', 'dave'])
  t.same(room.chat.map((l) => l.message), ['two', 'thirty-nine'], 'the history lines not seen before are added')
  t.same(room.position, { epoch: 'e1', seq: 40 })
  socket.deliver(chatEvent(41, 'live again'))
  t.same(seen, ['reset:not_recovered', 'chat:live again'])
  client.close()
})

t.test('another epoch: rejoin, and a reset that replaces the chat', async (t) => {
  const { socket, room, client } = await joined({ seq: 5, chat: [chatEvent(5, 'old run')] })
  const seen = record(room)
  socket.deliver(chatEvent(1, 'new run', 'e2'))
  const rejoin = await answerJoin(socket, { seq: 1, epoch: 'e2', recovered: false, chat: [chatEvent(1, 'new run', 'e2')] })
  t.same(rejoin.data.since, { epoch: 'e1', seq: 5 })
  t.same(seen, ['reset:new_epoch'])
  t.same(room.chat.map((l) => l.message), ['new run'])
  t.same(room.position, { epoch: 'e2', seq: 1 })
  client.close()
})

t.test('after a reconnect every room is rejoined with since before queued requests; recovered events are emitted', async (t) => {
  const { server, clock, socket, room, client } = await joined({ seq: 2 })
  const seen = record(room)
  const states: string[] = []
  client.on('state', ({ state }) => { states.push(state) })
  socket.serverClose(1012)
  const chat = room.sendChat('are we back?')
  clock.advance(1000)
  const next = await server.nextSocket()
  next.accept({ userId: 'alice' })
  t.same(next.sent.slice(0, 2).map((f) => f.type), ['join_room', 'chat'], 'the rejoin goes first')
  const rejoin = next.sent[0]!
  t.same(rejoin.data, { roomId: ROOM_ID, since: { epoch: 'e1', seq: 2 } })
  next.reply(rejoin, { type: 'room_joined', channel: `room-${ROOM_ID}`, data: { room: roomShape({ participants: ['alice', 'bob'] }), role: 'host', serverTime: 0, seq: 3, epoch: 'e1', recovered: true, chat: [] } })
  next.deliver(chatEvent(3, 'missed while away'))
  const chatRequest = next.sent[1]!
  next.reply(chatRequest, { ...chatEvent(4, 'are we back?', 'e1', 'alice') })
  t.equal((await chat).seq, 4)
  t.same(seen, ['chat:missed while away (replayed)', 'recovered:3', 'chat:are we back?'])
  t.same(states, ['reconnecting', 'connected'])
  client.close()
})

t.test('room_closed ends the room; a rejoin refused with ROOM_NOT_FOUND loses it', async (t) => {
  {
    const { socket, room, client } = await joined({ seq: 2 })
    const seen = record(room)
    socket.deliver(streamEvent('room_closed', 3, { reason: 'deleted' }))
    t.same(seen, ['closed:deleted'])
    t.equal(room.isActive, false)
    t.equal(room.joined, false)
    t.equal(client.room(ROOM_ID), undefined, 'the client forgets it')
    client.close()
  }
  {
    const { server, clock, socket, room, client } = await joined({ seq: 2 })
    const seen = record(room)
    const errors: string[] = []
    client.on('error', (err) => { errors.push((err as { code?: string }).code ?? '') })
    socket.serverClose(1006)
    clock.advance(250)
    const next = await server.nextSocket()
    next.accept()
    const closed = new Promise((resolve) => room.once('closed', resolve))
    next.reply(await next.nextSent('join_room'), { type: 'error', data: { error: 'Not Found', message: 'gone', code: 'ROOM_NOT_FOUND' } })
    await closed
    t.same(seen, ['closed:lost'])
    t.same(errors, ['ROOM_NOT_FOUND'])
    client.close()
  }
})

t.test('leave(): room_left, then closed with reason left', async (t) => {
  const { socket, room, client } = await joined()
  const seen = record(room)
  const leaving = room.leave()
  socket.reply(await socket.nextSent('leave_room'), { type: 'room_left', channel: `room-${ROOM_ID}`, data: { roomId: ROOM_ID } })
  await leaving
  t.same(seen, ['closed:left'])
  t.same(client.joinedRooms, [])
  client.close()
})

t.test('playback: sync events set it; the host\'s own sync after its ack; expectedPosition extrapolates on the server clock', async (t) => {
  const { socket, room, client, clock } = await joined()
  t.equal(room.expectedPosition(), undefined, 'nothing before the host synced')
  const start = clock.now()
  socket.deliver({ type: 'sync', channel: `room-${ROOM_ID}`, data: { roomId: ROOM_ID, videoUrl: 'https://example.com/v.mp4', currentTime: 10, isPlaying: true, playbackRate: 2, updatedAt: start } })
  t.equal(room.playback?.currentTime, 10)
  clock.advance(1500)
  t.equal(room.expectedPosition(), 13, '10 s + 1.5 s at rate 2 (the server clock is the local one here)')
  const syncing = room.sync({ videoUrl: 'https://example.com/v.mp4', currentTime: 20, isPlaying: false })
  const sent = await socket.nextSent('host_sync')
  t.equal(sent.data.at, clock.now(), 'at: the server clock when currentTime was sampled')
  socket.reply(sent, { type: 'ack', data: {} })
  await syncing
  clock.advance(5000)
  t.equal(room.expectedPosition(), 20, 'paused: the position stays')
  t.same(room.playback, { roomId: ROOM_ID, videoUrl: 'https://example.com/v.mp4', currentTime: 20, isPlaying: false, playbackRate: 1, updatedAt: start + 1500 })
  socket.deliver({ type: 'viewer_status', channel: `room-${ROOM_ID}`, data: { roomId: ROOM_ID, viewers: [{ userId: 'bob', drift: -0.2, buffering: false, at: 1 }] } })
  t.same(room.viewers.map((v) => v.drift), [-0.2])
  client.close()
})
