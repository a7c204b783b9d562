import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { startParty, TestClient, type Party, type Teardown } from '../helpers/ws-client.js'

const GRACE = 10_000
const TTL = 300_000
const database = await createTestDatabase(t)
const clock = new FakeClock()
const { wsUrl, app, rooms, reads } = await createTestApp(t, {
  listen: true,
  database,
  env: { DISCONNECT_GRACE_MS: String(GRACE), EMPTY_ROOM_TTL_MS: String(TTL) },
  deps: { clock }
})

const connect = async (tt: Teardown, userId: string): Promise<TestClient> => await TestClient.connect(wsUrl, { userId }, tt)

const party = async (tt: Teardown, host: string, ...viewers: string[]): Promise<Party> => await startParty(wsUrl, tt, host, ...viewers)

/** Closes a client's socket and waits until the server has processed the disconnect. */
async function drop (client: TestClient): Promise<void> {
  client.terminate()
  await client.closed
  for (let i = 0; i < 50 && app.server.listening; i++) {
    await rooms.idle()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

t.test('a late joiner starts at the extrapolated position', async (t) => {
  const { roomId, host } = await party(t, 'late-h')
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/m.mp4', currentTime: 100, isPlaying: true, playbackRate: 2 }, 'ack')
  clock.advance(10_000)
  const late = await connect(t, 'late-v')
  const joined = await late.expect('join_room', { roomId }, 'room_joined')
  t.same(joined.data.room.currentVideo, {
    roomId, videoUrl: 'https://example.com/m.mp4', currentTime: 120, isPlaying: true, playbackRate: 2, updatedAt: clock.now()
  }, '10 s at rate 2 moved it 20 s on, stamped now')
  const rest = await app.inject({ method: 'GET', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'x' } })
  t.equal(rest.json().currentVideo.currentTime, 120, 'REST extrapolates too')

  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/m.mp4', currentTime: 42, isPlaying: false }, 'ack')
  const pausedAt = clock.now()
  clock.advance(5000)
  const paused = await app.inject({ method: 'GET', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'x' } })
  t.match(paused.json().currentVideo, { currentTime: 42, isPlaying: false, playbackRate: 1, updatedAt: pausedAt }, 'a paused video does not move')
})

t.test('a host who rejoins within the grace keeps the room and nobody hears a thing', async (t) => {
  const { roomId, host, viewers } = await party(t, 'blip-h', 'blip-v')
  const viewer = viewers[0]!
  await drop(host)
  clock.advance(GRACE - 1)
  const back = await connect(t, 'blip-h')
  const rejoined = await back.expect('join_room', { roomId }, 'room_joined')
  t.equal(rejoined.data.role, 'host', 'same role')
  t.same(rejoined.data.room.participants, ['blip-h', 'blip-v'], 'same place in join order')
  clock.advance(GRACE * 2)
  await rooms.idle()
  await viewer.barrier()
  t.same(viewer.events.filter((e) => ['participant_left', 'participant_joined', 'host_changed'].includes(e.type)), [], 'nothing broadcast')
  t.equal((await back.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 0, isPlaying: false })).type, 'ack', 'still in control')
})

t.test('a host who does not come back is replaced by the longest-present participant', async (t) => {
  const { roomId, host, viewers } = await party(t, 'gone-h', 'gone-a', 'gone-b')
  const [a, b] = viewers as [TestClient, TestClient]
  await drop(host)
  const during = await reads.getRoom(roomId)
  t.same(during.participants, ['gone-h', 'gone-a', 'gone-b'], 'still a participant within the grace')
  t.equal(during.hostId, 'gone-h')
  clock.advance(GRACE)
  for (const client of [a, b]) {
    t.same((await client.nextOfType('participant_left')).data, { roomId, userId: 'gone-h' })
    t.same((await client.nextOfType('host_changed')).data, { roomId, hostId: 'gone-a', previousHostId: 'gone-h', reason: 'host_disconnected' })
  }
  const after = await reads.getRoom(roomId)
  t.same(after.participants, ['gone-a', 'gone-b'])
  const late = await connect(t, 'gone-h')
  const rejoined = await late.expect('join_room', { roomId }, 'room_joined')
  t.equal(rejoined.data.role, 'viewer', 'after the grace the old host comes back as a viewer')
})

t.test('the hand-over prefers a connected participant to one inside the grace', async (t) => {
  const { roomId, host, viewers } = await party(t, 'pref-h', 'pref-a', 'pref-b')
  const [a, b] = viewers as [TestClient, TestClient]
  await drop(a)
  clock.advance(1000)
  await host.expect('leave_room', { roomId }, 'room_left')
  t.same((await b.nextOfType('host_changed')).data, { roomId, hostId: 'pref-b', previousHostId: 'pref-h', reason: 'host_left' })
})

t.test('two tabs: closing one is not a disconnect', async (t) => {
  const { roomId, host } = await party(t, 'tab-h')
  const tab1 = await connect(t, 'tab-v')
  const tab2 = await connect(t, 'tab-v')
  await tab1.expect('join_room', { roomId }, 'room_joined')
  await tab2.expect('join_room', { roomId }, 'room_joined')
  await drop(tab1)
  clock.advance(GRACE * 2)
  await rooms.idle()
  await host.barrier()
  t.equal(host.received('participant_left').length, 0)
  t.same((await reads.getRoom(roomId)).participants, ['tab-h', 'tab-v'])
  await drop(tab2)
  clock.advance(GRACE)
  t.same((await host.nextOfType('participant_left')).data, { roomId, userId: 'tab-v' })
})

t.test('an empty room closes EMPTY_ROOM_TTL_MS after it became empty', async (t) => {
  const { roomId, host } = await party(t, 'ttl-h')
  const watcher = await connect(t, 'ttl-watcher')
  await host.expect('leave_room', { roomId }, 'room_left')
  clock.advance(TTL - 1)
  await rooms.idle()
  t.equal((await reads.getRoom(roomId)).isActive, true, 'still open just before the TTL')
  const rejoin = await connect(t, 'ttl-v')
  await rejoin.expect('join_room', { roomId }, 'room_joined')
  clock.advance(TTL * 2)
  await rooms.idle()
  t.equal((await reads.getRoom(roomId)).isActive, true, 'a join cancels the close')
  await rejoin.expect('leave_room', { roomId }, 'room_left')
  clock.advance(TTL)
  await rooms.idle()
  const closed = await reads.getRoom(roomId)
  t.equal(closed.isActive, false, 'closed once empty for the TTL')
  t.equal(closed.currentVideo, null)
  t.equal(rooms.openRoomCount, (await app.inject({ method: 'GET', url: '/rooms?limit=100', headers: { 'x-user-id': 'x' } })).json().rooms.length, 'memory freed: only open rooms are held')
  t.equal((await watcher.request('join_room', { roomId })).data.code, 'ROOM_CLOSED')
})

t.test('a room nobody joins closes EMPTY_ROOM_TTL_MS after its creation', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'lonely' }, payload: { name: 'nobody came' } })
  const roomId = created.json().id as string
  clock.advance(TTL - 1)
  await rooms.idle()
  t.equal((await reads.getRoom(roomId)).isActive, true)
  clock.advance(1)
  await rooms.idle()
  t.equal((await reads.getRoom(roomId)).isActive, false)
})

t.test('a user in the grace leaving makes the room empty and starts the TTL', async (t) => {
  const { roomId, host } = await party(t, 'solo-h')
  await drop(host)
  clock.advance(GRACE)
  await rooms.idle()
  t.same((await reads.getRoom(roomId)).participants, [])
  t.equal((await reads.getRoom(roomId)).hostId, 'solo-h', 'with nobody left the host stays as is')
  clock.advance(TTL)
  await rooms.idle()
  t.equal((await reads.getRoom(roomId)).isActive, false)
})

t.test('rooms, hosts and participants are read back by a new process', async (t) => {
  const { roomId, host, viewers } = await party(t, 'rs-h', 'rs-a', 'rs-b')
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/r.mp4', currentTime: 5, isPlaying: true }, 'ack')
  await host.expect('transfer_host', { roomId, newHostId: 'rs-b' }, 'host_changed')
  await viewers[0]!.expect('leave_room', { roomId }, 'room_left')
  await app.close()

  const restartClock = new FakeClock(clock.now())
  const second = await createTestApp(t, {
    listen: true,
    database,
    env: { DISCONNECT_GRACE_MS: String(GRACE), EMPTY_ROOM_TTL_MS: String(TTL) },
    deps: { clock: restartClock }
  })
  const room = await second.reads.getRoom(roomId)
  t.equal(room.hostId, 'rs-b', 'host read back')
  t.same(room.participants, ['rs-h', 'rs-b'], 'participants read back in join order')
  t.match(room.currentVideo, { videoUrl: 'https://example.com/r.mp4', currentTime: 5, isPlaying: true }, 'playback flushed on close and read back')

  const b = await TestClient.connect(second.wsUrl, { userId: 'rs-b' }, t)
  const rejoined = await b.expect('join_room', { roomId }, 'room_joined')
  t.equal(rejoined.data.role, 'host', 'a participant rejoining within the fresh grace keeps the role')
  restartClock.advance(GRACE)
  t.same((await b.nextOfType('participant_left')).data, { roomId, userId: 'rs-h' }, 'one who does not return leaves after the grace')
})
