import { setTimeout as delay } from 'node:timers/promises'
import { eq } from 'drizzle-orm'
import t from 'tap'
import { rooms } from '../../src/db/schema.js'
import { openServerDatabase, serverDatabase, startServer } from '../helpers/server-process.js'
import { TestClient, type ReceivedEvent } from '../helpers/ws-client.js'

const GRACE_MS = 4000
const FLUSH_MS = 1000
const TTL_MS = 600_000
/** How much later than the flush period the last persisted playback state may be (timer and write latency). */
const FLUSH_SLACK_MS = 500

// Several server processes, each opening the database (the embedded one takes seconds, more on a busy machine).
t.setTimeout(240_000)

t.test('after kill -9 the restarted server has every open room back, as it was a second before the crash', async (t) => {
  const database = await serverDatabase(t)
  const env = { DISCONNECT_GRACE_MS: String(GRACE_MS), PLAYBACK_FLUSH_MS: String(FLUSH_MS), EMPTY_ROOM_TTL_MS: String(TTL_MS) }
  const first = await startServer(t, { database, env })

  // Two rooms nobody joins: one will have been empty longer than the TTL when the server comes back.
  const stale = await first.http('POST', '/rooms', { userId: 'erin', body: { name: 'nobody came' } })
  const fresh = await first.http('POST', '/rooms', { userId: 'erin', body: { name: 'just made' } })
  t.equal(stale.status, 201)
  t.equal(fresh.status, 201)

  const alice = await TestClient.connect(first.wsUrl, { userId: 'alice' }, t)
  const created = await alice.expect('create_room', { roomName: 'Friday movie' }, 'room_created')
  const roomId = created.data.room.id as string
  const viewers: TestClient[] = []
  for (const userId of ['bob', 'carol', 'dan']) {
    const viewer = await TestClient.connect(first.wsUrl, { userId }, t)
    await viewer.expect('join_room', { roomId }, 'room_joined')
    viewers.push(viewer)
  }
  const [bob, carol, dan] = viewers as [TestClient, TestClient, TestClient]
  await bob.expect('chat', { roomId, message: 'popcorn ready' }, 'chat')
  for (const member of [alice, carol, dan]) await member.next((e) => e.type === 'chat' && e.data.message === 'popcorn ready')

  // The host plays and seeks every 100 ms for a few flush periods; every seek has its own URL and position,
  // so the state found after the restart tells which seek it was and how old it is.
  const syncs: Array<{ videoUrl: string, currentTime: number, stampedAt: number }> = []
  const sessionEnds = Date.now() + 3 * FLUSH_MS
  for (let k = 0; Date.now() < sessionEnds; k++) {
    const videoUrl = `https://example.com/part-${k}.mp4`
    await alice.expect('host_sync', { roomId, videoUrl, currentTime: k * 100, isPlaying: true }, 'ack')
    const sync = await bob.next((e) => e.type === 'sync' && e.data.videoUrl === videoUrl)
    syncs.push({ videoUrl, currentTime: k * 100, stampedAt: sync.data.updatedAt })
    await delay(100)
  }

  const killedAt = Date.now()
  first.kill('SIGKILL')
  t.equal((await first.exited).signal, 'SIGKILL')
  for (const member of [alice, bob, carol, dan]) t.equal((await member.closed).code, 1006, `${member.name} saw the connection drop`)

  // The stale room has been empty for an hour: as if the server had been down that long.
  const offline = await openServerDatabase(t, database)
  await offline.db.update(rooms).set({ emptySince: new Date(Date.now() - 3_600_000) }).where(eq(rooms.id, stale.body.id as string))
  await offline.close()

  const second = await startServer(t, { database, env })

  const back = await second.http('GET', `/rooms/${roomId}`, { userId: 'bob' })
  t.equal(back.status, 200)
  t.match(back.body, { id: roomId, hostId: 'alice', name: 'Friday movie', isActive: true, participants: ['alice', 'bob', 'carol', 'dan'] })
  const video = back.body.currentVideo
  const k = syncs.findIndex((s) => s.videoUrl === video?.videoUrl)
  t.ok(k >= 0, `the playback state is one the host sent: ${JSON.stringify(video)}`)
  const persisted = syncs[k]!
  const supersededAt = syncs[k + 1]?.stampedAt ?? killedAt
  t.ok(killedAt - supersededAt <= FLUSH_MS + FLUSH_SLACK_MS,
    `the state read back was current until ${killedAt - supersededAt} ms before the crash (sync ${k} of ${syncs.length - 1})`)
  t.match(video, { isPlaying: true, playbackRate: 1 })
  t.ok(Math.abs(video.currentTime - (persisted.currentTime + (video.updatedAt - persisted.stampedAt) / 1000)) < 0.001,
    'a playing video is extrapolated from the stored position and server time')

  const staleBack = await second.http('GET', `/rooms/${stale.body.id as string}`, { userId: 'erin' })
  t.match(staleBack.body, { isActive: false }, 'a room whose empty-room TTL passed while the server was down is closed on start')
  const freshBack = await second.http('GET', `/rooms/${fresh.body.id as string}`, { userId: 'erin' })
  t.match(freshBack.body, { isActive: true }, 'an empty room whose TTL has not passed stays open')

  // Bob and Carol come back; Alice (the host) and Dan do not.
  const bob2 = await TestClient.connect(second.wsUrl, { userId: 'bob' }, t)
  const carol2 = await TestClient.connect(second.wsUrl, { userId: 'carol' }, t)
  for (const viewer of [bob2, carol2]) {
    const joined = await viewer.expect('join_room', { roomId }, 'room_joined')
    t.equal(joined.data.role, 'viewer', `${viewer.name} keeps the viewer role`)
    t.match(joined.data.room, { hostId: 'alice', participants: ['alice', 'bob', 'carol', 'dan'] }, 'those still away are still in the room')
  }

  // Whoever does not return had a fresh grace counted from the restart (the grace started no earlier than
  // the process did, and they were still in the room when the others rejoined, however long the restart took).
  await bob2.next((e) => e.type === 'participant_left' && e.data.userId === 'alice', GRACE_MS + 5000)
  t.ok(Date.now() - second.spawnedAt >= GRACE_MS, 'the host left only after a full grace')
  const handOver = await bob2.nextOfType('host_changed')
  t.same(handOver.data, { roomId, hostId: 'bob', previousHostId: 'alice', reason: 'host_disconnected' })
  await bob2.next((e) => e.type === 'participant_left' && e.data.userId === 'dan', GRACE_MS + 5000)
  await carol2.next((e) => e.type === 'host_changed' && e.data.hostId === 'bob')

  await bob2.barrier()
  await carol2.barrier()
  const joinedEvents = (c: TestClient): ReceivedEvent[] => c.received('participant_joined')
  t.same([...joinedEvents(bob2), ...joinedEvents(carol2)], [], 'rejoining after the restart is announced to nobody')
  t.same(carol2.received('participant_left').map((e) => e.data.userId).sort(), ['alice', 'dan'])

  const after = await second.http('GET', `/rooms/${roomId}`, { userId: 'bob' })
  t.match(after.body, { hostId: 'bob', participants: ['bob', 'carol'], isActive: true })
  await bob2.expect('host_sync', { roomId, videoUrl: 'https://example.com/after.mp4', currentTime: 0, isPlaying: false }, 'ack')
})
