import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { TestClient, type Teardown } from '../helpers/ws-client.js'

// Bursts here test ordering, not the per-connection rate limit (test/realtime/limits.test.ts does that).
const { wsUrl, app } = await createTestApp(t, { listen: true, env: { WS_MESSAGES_PER_SECOND: '10000', WS_MESSAGE_BURST: '10000' } })
const connect = async (tt: Teardown, userId: string): Promise<TestClient> => await TestClient.connect(wsUrl, { userId }, tt)

t.test('a burst of 100 syncs arrives complete and in order at every viewer', async (t) => {
  const host = await connect(t, 'burst-h')
  const roomId = (await host.expect('create_room', { roomName: 'burst' }, 'room_created')).data.room.id as string
  const viewers = await Promise.all(['burst-a', 'burst-b', 'burst-c'].map(async (u) => await connect(t, u)))
  for (const v of viewers) await v.expect('join_room', { roomId }, 'room_joined')
  for (let i = 0; i < 100; i++) host.send('host_sync', { roomId, videoUrl: 'https://example.com/b.mp4', currentTime: i, isPlaying: false }, `s${i}`)
  const last = await host.next((e) => e.replyTo === 's99')
  t.equal(last.type, 'ack')
  t.same(host.received('ack').map((e) => e.replyTo), Array.from({ length: 100 }, (_, i) => `s${i}`), 'one ack per sync, in the order sent')
  for (const viewer of viewers) {
    await viewer.barrier()
    t.same(viewer.received('sync').map((e) => e.data.currentTime), Array.from({ length: 100 }, (_, i) => i), 'every sync, in order')
  }
})

t.test('every member sees the room\'s events in one order', async (t) => {
  const host = await connect(t, 'ord-h')
  const roomId = (await host.expect('create_room', { roomName: 'order' }, 'room_created')).data.room.id as string
  const a = await connect(t, 'ord-a')
  const b = await connect(t, 'ord-b')
  await a.expect('join_room', { roomId }, 'room_joined')
  await b.expect('join_room', { roomId }, 'room_joined')
  const watcher = await connect(t, 'ord-w')
  await watcher.expect('join_room', { roomId }, 'room_joined')
  // Three senders interleave chat, sync, a join and a leave without waiting for each other.
  const late = await connect(t, 'ord-late')
  for (let i = 0; i < 30; i++) {
    host.send('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: i, isPlaying: true }, `h${i}`)
    a.send('chat', { roomId, message: `a${i}` }, `a${i}`)
    b.send('chat', { roomId, message: `b${i}` }, `b${i}`)
    if (i === 10) late.send('join_room', { roomId }, 'late-join')
    if (i === 20) late.send('leave_room', { roomId }, 'late-leave')
  }
  await host.next((e) => e.replyTo === 'h29')
  await a.next((e) => e.replyTo === 'a29')
  await b.next((e) => e.replyTo === 'b29')
  await late.next((e) => e.replyTo === 'late-leave')
  const signature = (client: TestClient): string[] => client.events
    .filter((e) => e.channel === `room-${roomId}` && e.replyTo === undefined && ['chat', 'participant_joined', 'participant_left'].includes(e.type))
    .map((e) => e.type === 'chat' ? e.data.message as string : `${e.type}:${e.data.userId as string}`)
    .filter((s) => !s.startsWith('participant_') || s.endsWith(':ord-late')) // only the interleaved phase
  for (const c of [host, a, b, watcher]) await c.barrier()
  const seen = signature(watcher)
  t.equal(seen.filter((s) => s.startsWith('a') || s.startsWith('b')).length, 60, 'the watcher saw every chat line')
  t.ok(seen.includes('participant_joined:ord-late') && seen.includes('participant_left:ord-late'))
  // The others see the same sequence minus their own lines (which they got as replies).
  t.same(signature(host), seen, 'host sees the watcher\'s order')
  t.same(signature(a), seen.filter((s) => !/^a\d/.test(s)), 'a sees the same order')
  t.same(signature(b), seen.filter((s) => !/^b\d/.test(s)), 'b sees the same order')
  t.same(seen.filter((s) => /^a\d/.test(s)), Array.from({ length: 30 }, (_, i) => `a${i}`), 'each sender\'s lines in the order sent')
})

t.test('legacy 1-on-1 channels', async (t) => {
  const alice = await connect(t, 'alice')
  const bob = await connect(t, 'bob')
  const bobTab2 = await connect(t, 'bob')
  const carol = await connect(t, 'carol')
  const chatId = 'sync-alice--bob'

  const ack = await alice.request('sync', { chatId, videoUrl: 'https://example.com/v.mp4', currentTime: 3, isPlaying: true })
  t.equal(ack.type, 'ack')
  const warning = alice.received('warning')
  t.equal(warning.length, 1)
  t.equal(warning[0]?.data.code, 'DEPRECATED')
  for (const tab of [bob, bobTab2]) {
    const relayed = await tab.nextOfType('sync')
    t.equal(relayed.channel, chatId)
    t.match(relayed.data, { chatId, videoUrl: 'https://example.com/v.mp4', currentTime: 3, isPlaying: true, playbackRate: 1 })
    t.type(relayed.data.updatedAt, 'number')
  }

  const line = await bob.request('chat', { chatId, message: 'hi alice' })
  t.equal(line.type, 'chat')
  t.equal(line.channel, chatId)
  t.match(line.data, { chatId, userId: 'bob', message: 'hi alice' })
  t.same((await alice.nextOfType('chat')).data, line.data, 'the other user hears it')
  t.same((await bobTab2.nextOfType('chat')).data, line.data, 'and the sender\'s other tab')

  await alice.request('sync', { chatId, videoUrl: 'https://example.com/v.mp4', currentTime: 4, isPlaying: true })
  t.equal(alice.received('warning').length, 1, 'one DEPRECATED warning per connection')

  t.equal((await carol.request('sync', { chatId, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: true })).data.code, 'INVALID_CHAT_ID', 'a third user may not use the channel')
  t.equal((await carol.request('chat', { chatId, message: 'eavesdrop' })).data.code, 'INVALID_CHAT_ID')
  for (const bad of ['alice--bob', 'sync-alice-bob', 'sync-alice--alice', 'sync---bob', 'sync-al ice--bob', 'sync-alice--']) {
    t.equal((await alice.request('sync', { chatId: bad, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: true })).data.code, 'INVALID_CHAT_ID', bad)
  }
  await carol.barrier()
  t.same(carol.events.filter((e) => e.type === 'sync' || e.type === 'chat'), [], 'the third user heard nothing')

  const dashed = await connect(t, 'x--y')
  const z = await connect(t, 'z')
  await dashed.expect('sync', { chatId: 'sync-x--y--z', videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: false }, 'ack')
  t.equal((await z.nextOfType('sync')).channel, 'sync-x--y--z', 'user ids containing -- are split correctly')
})

t.test('sync carrying roomId is host_sync, with the deprecation warning', async (t) => {
  const host = await connect(t, 'legacy-host')
  const viewer = await connect(t, 'legacy-viewer')
  const roomId = (await host.expect('create_room', { roomName: 'legacy room' }, 'room_created')).data.room.id as string
  await viewer.expect('join_room', { roomId }, 'room_joined')
  const ack = await host.request('sync', { roomId, videoUrl: 'https://example.com/l.mp4', currentTime: 9, isPlaying: false })
  t.equal(ack.type, 'ack')
  t.equal(host.received('warning')[0]?.data.code, 'DEPRECATED')
  const sync = await viewer.nextOfType('sync')
  t.equal(sync.channel, `room-${roomId}`)
  t.match(sync.data, { roomId, currentTime: 9 })
  t.equal((await viewer.request('sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: true })).data.code, 'NOT_HOST', 'still host only')
})

t.test('metrics count connections, messages, errors, refusals and legacy use', async (t) => {
  const host = await connect(t, 'm-h')
  const roomId = (await host.expect('create_room', { roomName: 'metrics' }, 'room_created')).data.room.id as string
  const viewer = await connect(t, 'm-v')
  await viewer.expect('join_room', { roomId }, 'room_joined')
  await viewer.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: true })
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(text, /^ws_connections \d+/m)
  t.match(text, /^rooms_open [1-9]\d*/m)
  t.match(text, /^room_participants [1-9]\d*/m)
  t.match(text, /^ws_messages_in_total\{type="join_room"\} [1-9]/m)
  t.match(text, /^ws_messages_out_total\{type="participant_joined"\} [1-9]/m)
  t.match(text, /^errors_total\{code="NOT_HOST",transport="ws"\} [1-9]/m)
  t.match(text, /^permission_refusals_total\{event="host_sync",code="NOT_HOST"\} [1-9]/m)
  t.match(text, /^legacy_sync_messages_total\{type="sync"\} [1-9]/m)
  t.match(text, /^ws_fanout_duration_seconds_count [1-9]/m)
})
