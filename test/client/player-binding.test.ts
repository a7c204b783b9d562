/**
 * The player binding against a fake media element on a fake clock, with a real room object (its link to the
 * client faked): the host's player drives host_sync with `at`; a viewer with a skewed clock follows the host on
 * the server clock, reports once a second, holds while stalled, and switches roles on host_changed.
 */
import t from 'tap'
import { Emitter, WatchPartyRoom, bindPlayer } from '@watch-party/client'
import { FakeClock } from '../helpers/fake-clock.js'
import { FakeMedia } from './helpers/fake-media.js'
import { ROOM_ID, roomShape } from './helpers/fake-socket.js'

const VIDEO = 'http://media.test/clip.webm'
const CHANNEL = `room-${ROOM_ID}`

interface Sent { type: string, data: Record<string, unknown> }

/** A room as `userId` sees it; `offset` is the server clock minus this user's clock, which the room is told. */
function roomFor (clock: FakeClock, userId: string, options: { currentVideo?: unknown, offset?: number } = {}) {
  const sent: Sent[] = []
  const link = {
    userId: () => userId,
    serverNow: () => clock.now() + (options.offset ?? 0),
    request: async (type: string, data: Record<string, unknown>) => {
      sent.push({ type, data })
      return { type: 'ack', data: {} }
    },
    resync: () => {},
    forget: () => {}
  }
  const snapshot = {
    type: 'room_joined',
    channel: CHANNEL,
    data: { room: roomShape({ participants: ['alice', 'bob'], currentVideo: options.currentVideo ?? null }), role: 'viewer', serverTime: clock.now(), seq: 0, epoch: 'e1', chat: [] }
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const room = new WatchPartyRoom(link as any, snapshot as any, 50)
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const deliver = (frame: Record<string, unknown>) => { room.receive({ channel: CHANNEL, ...frame } as any) }
  return { room, sent, deliver }
}

/** Advances the fake clock in steps, letting promises settle between them. */
async function run (clock: FakeClock, ms: number, step = 10): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(step)
    for (let i = 0; i < 3; i++) await Promise.resolve()
  }
}

t.test('host: play, pause, seek and rate change each send host_sync stamped with the server clock; a heartbeat while playing', async (t) => {
  const clock = new FakeClock()
  const { room, sent } = roomFor(clock, 'alice', { offset: 7000 })
  const media = new FakeMedia(clock)
  const binding = bindPlayer(room, media, { hostHeartbeatMs: 5000, timers: clock, now: () => clock.now() })
  t.equal(binding.mode, 'host')
  binding.load(VIDEO)
  await run(clock, 100)
  t.match(sent.shift(), { type: 'host_sync', data: { videoUrl: VIDEO, currentTime: 0, isPlaying: false, playbackRate: 1 } }, 'loading a video syncs it, paused')
  const pressed = clock.now()
  void media.play()
  await run(clock, 100)
  const playing = sent.shift()
  t.match(playing, { type: 'host_sync', data: { isPlaying: true } }, 'sent when playback starts')
  const movingSince = pressed + 40 // FakeMedia starts moving 40 ms after play()
  t.ok((playing?.data.at as number) - 7000 >= movingSince, 'once the position moves, not at the `playing` event')
  t.ok(Math.abs((playing?.data.currentTime as number) - ((playing?.data.at as number) - 7000 - movingSince) / 1000) < 0.001, '`at` is the server clock (local + offset) when the position was read')
  t.same(sent, [], 'one sync per change')
  await run(clock, 5000)
  const beat = sent.shift()
  t.match(beat, { type: 'host_sync', data: { isPlaying: true } }, 'a heartbeat after 5 s of playing')
  t.ok(Math.abs((beat?.data.currentTime as number) - (playing?.data.currentTime as number) - ((beat?.data.at as number) - (playing?.data.at as number)) / 1000) < 0.001, 'with the position read at `at`')
  media.currentTime = 42
  await run(clock, 200)
  const afterSeek = sent.filter((s) => s.type === 'host_sync').map((s) => s.data.currentTime as number)
  t.equal(afterSeek.length, 1, 'a seek syncs once')
  t.ok(afterSeek[0]! > 42 && afterSeek[0]! < 42.05, 'once it landed and moves again (not while seeking)')
  sent.length = 0
  media.playbackRate = 1.5
  await run(clock, 20)
  t.match(sent.shift(), { data: { playbackRate: 1.5, isPlaying: true } })
  media.pause()
  await run(clock, 20)
  t.match(sent.shift(), { data: { isPlaying: false } })
  await run(clock, 12_000)
  t.same(sent, [], 'no heartbeat while paused')
  binding.destroy()
})

t.test('viewer with a clock 4 s off: loads, seeks once, plays, converges by rate to under 5 ms; reports once a second', async (t) => {
  const clock = new FakeClock()
  const offset = 4000 // this viewer's clock is 4 s behind the server's; its client estimated that
  const serverNow = () => clock.now() + offset
  const { room, sent, deliver } = roomFor(clock, 'bob', { offset })
  const media = new FakeMedia(clock)
  const binding = bindPlayer(room, media, { timers: clock, now: () => clock.now() })
  t.equal(binding.mode, 'viewer')
  const hostAt = (ms: number) => 12 + (serverNow() - ms) / 1000 // the host's true position
  const syncedAt = serverNow()
  deliver({ type: 'sync', data: { roomId: ROOM_ID, videoUrl: VIDEO, currentTime: 12, isPlaying: true, playbackRate: 1, updatedAt: syncedAt } })
  await run(clock, 2000)
  t.equal(media.src, VIDEO, 'the host video is loaded')
  t.equal(media.paused, false, 'and plays')
  t.equal(media.seeks, 1, 'one seek to join')
  await run(clock, 3000)
  const drift = media.currentTime - hostAt(syncedAt)
  t.ok(Math.abs(drift) < 0.005, `drift ${(drift * 1000).toFixed(2)} ms`)
  t.equal(media.seeks, 1, 'the rest by rate alone')
  t.ok(Math.abs(binding.status!.drift! - drift) < 0.001, 'status reports the same drift')
  const reports = sent.filter((s) => s.type === 'playback_report')
  t.ok(reports.length >= 4 && reports.length <= 5, `one report a second (${reports.length} in 5 s)`)
  t.match(reports.at(-1)?.data, { roomId: ROOM_ID, isPlaying: true, buffering: false })
  t.ok(Math.abs((reports.at(-1)?.data.at as number) - (serverNow() - (clock.now() % 1000))) < 1000, 'stamped on the server clock')
  binding.destroy()
})

t.test('viewer: a stall holds (no seek, no rate change) and is reported; afterwards one seek catches up', async (t) => {
  const clock = new FakeClock()
  const { room, sent, deliver } = roomFor(clock, 'bob')
  const media = new FakeMedia(clock)
  const binding = bindPlayer(room, media, { timers: clock, now: () => clock.now() })
  const start = clock.now()
  deliver({ type: 'sync', data: { roomId: ROOM_ID, videoUrl: VIDEO, currentTime: 0, isPlaying: true, playbackRate: 1, updatedAt: start } })
  await run(clock, 3000)
  const seeks = media.seeks
  media.stall()
  const ratesBefore = media.rateWrites
  sent.length = 0
  await run(clock, 3000)
  t.equal(media.seeks, seeks, 'no seek while stalled')
  t.equal(media.rateWrites, ratesBefore, 'no rate change while stalled')
  t.ok(sent.filter((s) => s.type === 'playback_report').every((s) => s.data.buffering === true), 'reported as buffering')
  t.equal(binding.status?.decision?.kind, 'hold')
  media.resume()
  await run(clock, 2500)
  t.equal(media.seeks, seeks + 1, 'one seek once it plays again, 3 s behind')
  const drift = media.currentTime - (clock.now() - start) / 1000
  t.ok(Math.abs(drift) < 0.03, `back within 30 ms (${(drift * 1000).toFixed(1)} ms)`)
  binding.destroy()
})

t.test('viewer follows pause, seek and rate; host_changed makes it the host at the room rate; destroy lets go', async (t) => {
  const clock = new FakeClock()
  const { room, sent, deliver } = roomFor(clock, 'bob')
  const media = new FakeMedia(clock)
  const modes: string[] = []
  const binding = bindPlayer(room, media, { timers: clock, now: () => clock.now() })
  binding.on('mode', (m) => { modes.push(m) })
  const sync = (data: Record<string, unknown>) => { deliver({ type: 'sync', data: { roomId: ROOM_ID, videoUrl: VIDEO, playbackRate: 1, updatedAt: clock.now(), ...data } }) }
  sync({ currentTime: 5, isPlaying: true })
  await run(clock, 2000)
  sync({ currentTime: 20, isPlaying: false })
  await run(clock, 300)
  t.equal(media.paused, true, 'paused with the host')
  t.equal(media.currentTime, 20, 'on the host frame')
  sync({ currentTime: 60, isPlaying: true, playbackRate: 2 })
  await run(clock, 3000)
  t.ok(Math.abs(media.currentTime - 66) < 0.02, `follows a seek at 2x (${media.currentTime.toFixed(3)})`)
  t.ok(Math.abs(media.playbackRate - 2) < 0.02, 'at about the host rate')
  deliver({ type: 'host_changed', seq: 1, epoch: 'e1', data: { roomId: ROOM_ID, hostId: 'bob', previousHostId: 'alice', reason: 'transfer' } })
  await run(clock, 20)
  t.same(modes, ['host'])
  t.equal(media.playbackRate, 2, 'the new host plays at the room rate, not with a viewer correction')
  t.match(sent.filter((s) => s.type === 'host_sync').at(-1), { data: { videoUrl: VIDEO, isPlaying: true, playbackRate: 2 } }, 'and syncs at once')
  binding.destroy()
  t.equal(media.listenerCount(), 0, 'every listener removed')
  sent.length = 0
  await run(clock, 6000)
  t.same(sent, [], 'nothing sent after destroy')
})

/** The two client events the binding listens to. */
class FakeClient extends Emitter<{ connected: { reconnect: boolean }, clock: { offset: number } }> {
  clock: { offset: number } | undefined = { offset: 0 }
  fire<K extends 'connected' | 'clock'> (event: K, payload: { connected: { reconnect: boolean }, clock: { offset: number } }[K]): void { this.emit(event, payload) }
}

t.test('with the client: after a reconnect nothing trusts the clock until the first estimate from pings', async (t) => {
  const clock = new FakeClock()
  const host = roomFor(clock, 'alice')
  const client = new FakeClient()
  const media = new FakeMedia(clock)
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const binding = bindPlayer(host.room, media, { timers: clock, now: () => clock.now(), client: client as any })
  binding.load(VIDEO)
  await run(clock, 100)
  host.sent.length = 0
  client.fire('connected', { reconnect: true })
  void media.play()
  await run(clock, 6000)
  t.same(host.sent.filter((s) => s.type === 'host_sync'), [], 'the host sends nothing on a clock from the hello')
  client.fire('clock', { offset: 0 })
  await run(clock, 20)
  t.match(host.sent.filter((s) => s.type === 'host_sync'), [{ data: { isPlaying: true } }], 'and syncs once the estimate is in')
  binding.destroy()

  const viewer = roomFor(clock, 'bob')
  const viewerClient = new FakeClient()
  viewerClient.clock = undefined // no round of pings completed yet
  const viewerMedia = new FakeMedia(clock)
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const follower = bindPlayer(viewer.room, viewerMedia, { timers: clock, now: () => clock.now(), client: viewerClient as any })
  viewer.deliver({ type: 'sync', data: { roomId: ROOM_ID, videoUrl: VIDEO, currentTime: 30, isPlaying: true, playbackRate: 1, updatedAt: clock.now() } })
  await run(clock, 3000)
  const joined = viewerMedia.seeks
  t.ok(joined >= 1, 'a viewer not yet playing starts from a rough seek')
  viewerClient.fire('connected', { reconnect: true })
  viewer.deliver({ type: 'sync', data: { roomId: ROOM_ID, videoUrl: VIDEO, currentTime: 90, isPlaying: true, playbackRate: 1, updatedAt: clock.now() } })
  await run(clock, 1000)
  t.equal(viewerMedia.seeks, joined, 'a playing viewer makes no seek on the clock of a hello')
  t.match(follower.status?.decision, { kind: 'hold', reason: 'clock' })
  viewerClient.fire('clock', { offset: 0 })
  await run(clock, 1500)
  t.equal(viewerMedia.seeks, joined + 1, 'then it seeks')
  follower.destroy()
})
