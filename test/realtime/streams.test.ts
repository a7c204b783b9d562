/**
 * Room streams over real sockets (protocol 1.1): positions, catch-up after a drop, chat history, chat
 * retries, clock sync, viewer reports. Every frame the test client receives is also checked against the
 * protocol's schemas (test/helpers/ws-client.ts).
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { startParty, TestClient, type ReceivedEvent } from '../helpers/ws-client.js'

const { wsUrl, rooms } = await createTestApp(t, {
  listen: true,
  env: { ROOM_HISTORY_SIZE: '20', CHAT_HISTORY_SIZE: '5', REPLAY_MAX_BYTES: '2048', DISCONNECT_GRACE_MS: '60000' }
})

const streamOf = (client: TestClient, roomId: string): ReceivedEvent[] =>
  client.events.filter((e) => e.channel === `room-${roomId}` && typeof e.seq === 'number')

t.test('connected lists the features that are on', async (t) => {
  const alice = await TestClient.connect(wsUrl, { userId: 'feat' }, t)
  t.same(alice.connected.data.features, ['positions', 'catch_up', 'chat_history', 'viewer_reports'])
})

t.test('every member sees one gapless sequence, with the same data at the same seq', async (t) => {
  const { roomId, host, viewers } = await startParty(wsUrl, t, 'gap-h', 'gap-a', 'gap-b')
  const [a, b] = viewers as [TestClient, TestClient]
  for (let i = 0; i < 5; i++) {
    await a.expect('chat', { roomId, message: `a${i}` }, 'chat')
    await host.expect('chat', { roomId, message: `h${i}` }, 'chat')
  }
  const late = await TestClient.connect(wsUrl, { userId: 'gap-c' }, t)
  await late.expect('join_room', { roomId }, 'room_joined')
  await late.expect('leave_room', { roomId }, 'room_left')
  await b.expect('transfer_host', { roomId, newHostId: 'gap-b' }, 'error') // b is not host: refused, not in the stream
  await host.expect('transfer_host', { roomId, newHostId: 'gap-a' }, 'host_changed')
  for (const client of [host, a, b]) await client.barrier()
  const seen = [host, a, b].map((c) => streamOf(c, roomId))
  // The host and a joined first: they have every event from the first viewer's join on; b from its own on.
  const bySeq = new Map<number, ReceivedEvent>()
  for (const events of seen) {
    const seqs = events.map((e) => e.seq as number)
    t.same(seqs, Array.from({ length: seqs.length }, (_v, i) => seqs[0]! + i), 'consecutive, no gaps, no repeats')
    for (const e of events) {
      const earlier = bySeq.get(e.seq as number)
      if (earlier !== undefined) t.same({ type: e.type, epoch: e.epoch, data: e.data }, { type: earlier.type, epoch: earlier.epoch, data: earlier.data }, `seq ${String(e.seq)} is the same event everywhere`)
      bySeq.set(e.seq as number, e)
    }
  }
  t.equal(seen[0]!.at(-1)!.type, 'host_changed')
  t.equal(seen[0]!.at(-1)!.seq, 2 + 10 + 2 + 1, 'two joins, ten lines, a join and a leave, a transfer')
})

t.test('a client that drops and rejoins with since gets exactly what it missed, and nobody notices', async (t) => {
  const { roomId, host, viewers } = await startParty(wsUrl, t, 'cu-h', 'cu-a')
  const [a] = viewers as [TestClient]
  await host.expect('chat', { roomId, message: 'before' }, 'chat')
  await a.barrier()
  const last = streamOf(a, roomId).at(-1)!
  a.terminate()
  await a.closed
  await host.expect('chat', { roomId, message: 'missed 1' }, 'chat')
  const other = await TestClient.connect(wsUrl, { userId: 'cu-b' }, t)
  await other.expect('join_room', { roomId }, 'room_joined')
  await host.expect('chat', { roomId, message: 'missed 2' }, 'chat')
  await host.barrier()
  const missed = streamOf(host, roomId).filter((e) => (e.seq as number) > (last.seq as number))

  const back = await TestClient.connect(wsUrl, { userId: 'cu-a' }, t)
  const joined = await back.expect('join_room', { roomId, since: { epoch: last.epoch, seq: last.seq } }, 'room_joined')
  t.equal(joined.data.recovered, true)
  t.equal(joined.data.seq, missed.at(-1)!.seq, 'the snapshot is the state after the last missed event')
  await back.barrier()
  const replayed = back.events.filter((e) => typeof e.seq === 'number')
  t.same(replayed.map((e) => ({ type: e.type, seq: e.seq, epoch: e.epoch, data: e.data })),
    missed.map((e) => ({ type: e.type, seq: e.seq, epoch: e.epoch, data: e.data })), 'exactly the missed events, as first sent, in order')
  t.same(back.events.slice(1, 1 + 1 + missed.length).map((e) => e.type), ['room_joined', ...missed.map((e) => e.type)], 'right after the reply, before anything newer')
  await host.expect('chat', { roomId, message: 'after' }, 'chat')
  const after = await back.next((e) => e.type === 'chat' && e.data.message === 'after')
  t.equal(after.seq, (missed.at(-1)!.seq as number) + 1, 'then the stream goes on')
  for (const client of [host, other]) {
    await client.barrier()
    t.notOk(client.events.some((e) => (e.type === 'participant_left' || e.type === 'participant_joined') && e.data.userId === 'cu-a' && (e.seq as number) > (last.seq as number)), `${client.name} saw no leave or join of cu-a`)
  }
})

t.test('a wrong epoch, a future seq and a gap older than the history give recovered:false and no replay', async (t) => {
  const { roomId, host, viewers } = await startParty(wsUrl, t, 'nr-h', 'nr-a')
  const [a] = viewers as [TestClient]
  await a.barrier()
  const { epoch, seq } = streamOf(host, roomId).at(-1)! as { epoch: string, seq: number } & ReceivedEvent
  for (let i = 0; i < 40; i++) await host.expect('chat', { roomId, message: `line ${i}` }, 'chat')
  await rooms.idle()
  const cases: Array<[string, { epoch: string, seq: number }]> = [
    ['a wrong epoch', { epoch: 'not-the-epoch', seq }],
    ['a future seq', { epoch, seq: seq + 1000 }],
    ['a gap older than the history (20 events)', { epoch, seq }]
  ]
  for (const [what, since] of cases) {
    const client = await TestClient.connect(wsUrl, { userId: 'nr-a' }, t)
    const joined = await client.expect('join_room', { roomId, since }, 'room_joined')
    t.equal(joined.data.recovered, false, what)
    await client.barrier()
    t.same(client.events.filter((e) => typeof e.seq === 'number'), [], `${what}: nothing replayed`)
    t.equal(joined.data.chat.length, 5, `${what}: the snapshot has the chat history`)
  }
  const big = await TestClient.connect(wsUrl, { userId: 'nr-a' }, t)
  const tooMuch = await big.expect('join_room', { roomId, since: { epoch, seq: seq + 25 } }, 'room_joined')
  t.equal(tooMuch.data.recovered, false, '15 missed lines are within the history but over REPLAY_MAX_BYTES (2048)')
  const small = await TestClient.connect(wsUrl, { userId: 'nr-a' }, t)
  const fits = await small.expect('join_room', { roomId, since: { epoch, seq: seq + 38 } }, 'room_joined')
  t.equal(fits.data.recovered, true, 'two missed lines fit')
})

t.test('room_joined and room_created carry the last CHAT_HISTORY_SIZE whole chat events, oldest first', async (t) => {
  const { roomId, host } = await startParty(wsUrl, t, 'ch-h')
  for (let i = 0; i < 7; i++) await host.expect('chat', { roomId, message: `m${i}` }, 'chat')
  for (let i = 0; i < 10; i++) {
    const c = await TestClient.connect(wsUrl, { userId: `ch-v${i}` }, t)
    await c.expect('join_room', { roomId }, 'room_joined')
  }
  const late = await TestClient.connect(wsUrl, { userId: 'ch-late' }, t)
  const joined = await late.expect('join_room', { roomId }, 'room_joined')
  t.same(joined.data.chat.map((c: ReceivedEvent) => c.data.message), ['m2', 'm3', 'm4', 'm5', 'm6'])
  const sent = streamOf(host, roomId).filter((e) => e.type === 'chat').slice(-5)
  t.same(joined.data.chat, sent.map((e) => ({ type: e.type, channel: e.channel, seq: e.seq, epoch: e.epoch, data: e.data })), 'each the whole event as it was broadcast')
  const created = await late.expect('create_room', { roomName: 'fresh' }, 'room_created')
  t.same([created.data.seq, created.data.chat], [0, []], 'a new room: position 0, no chat')
  t.equal(typeof created.data.epoch, 'string')
})

t.test('a chat retried with the same id is answered with the stored event, once in the stream', async (t) => {
  const { roomId, host, viewers } = await startParty(wsUrl, t, 'rt-h', 'rt-a')
  const [a] = viewers as [TestClient]
  host.send('chat', { roomId, message: 'only once' }, 'same-id')
  const first = await host.next((e) => e.replyTo === 'same-id')
  host.send('chat', { roomId, message: 'only once' }, 'same-id')
  const retry = await host.next((e) => e.replyTo === 'same-id')
  t.same(retry, first)
  await a.barrier()
  t.equal(a.events.filter((e) => e.type === 'chat' && e.data.message === 'only once').length, 1, 'the others got it once')
})

t.test('pong carries the server time with sub-millisecond precision, close to the wall clock', async (t) => {
  const c = await TestClient.connect(wsUrl, { userId: 'clock' }, t)
  const samples: number[] = []
  for (let i = 0; i < 20; i++) {
    const before = Date.now()
    const pong = await c.request('ping', { clientTime: before })
    const after = Date.now()
    t.ok(pong.data.serverTime >= before - 1 && pong.data.serverTime <= after + 1, 'within the round trip')
    samples.push(pong.data.serverTime as number)
  }
  t.ok(samples.some((s) => !Number.isInteger(s)), 'fractional milliseconds')
})

t.test('viewer_status: each viewer\'s drift against the host, to the host\'s connections only', async (t) => {
  const { roomId, host, viewers } = await startParty(wsUrl, t, 'vs-h', 'vs-a', 'vs-b')
  const [a, b] = viewers as [TestClient, TestClient]
  const hostTab2 = await TestClient.connect(wsUrl, { userId: 'vs-h' }, t)
  await hostTab2.expect('join_room', { roomId }, 'room_joined')
  const syncedAt = Date.now()
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/v.mp4', currentTime: 100, isPlaying: true, at: syncedAt }, 'ack')
  // a is 0.3 s ahead, b 0.2 s behind and buffering; both sample "now" on the server clock.
  const at = Date.now()
  const expected = 100 + (at - syncedAt) / 1000
  await a.expect('playback_report', { roomId, currentTime: expected + 0.3, isPlaying: true, at }, 'ack')
  await b.expect('playback_report', { roomId, currentTime: expected - 0.2, isPlaying: false, buffering: true, at }, 'ack')
  await host.expect('playback_report', { roomId, currentTime: 0, isPlaying: true, at }, 'ack')
  const status = await host.next((e) => e.type === 'viewer_status' && e.data.viewers.length === 2, 4000)
  const rows = new Map(status.data.viewers.map((v: { userId: string }) => [v.userId, v]))
  const rowA = rows.get('vs-a') as { drift: number, buffering: boolean }
  const rowB = rows.get('vs-b') as { drift: number, buffering: boolean }
  t.ok(Math.abs(rowA.drift - 0.3) <= 0.05, `a's drift ${rowA.drift} within 50 ms of 0.3`)
  t.ok(Math.abs(rowB.drift + 0.2) <= 0.05, `b's drift ${rowB.drift} within 50 ms of -0.2`)
  t.same([rowA.buffering, rowB.buffering], [false, true])
  t.equal(status.channel, `room-${roomId}`)
  await hostTab2.next((e) => e.type === 'viewer_status' && e.data.viewers.length === 2, 4000)
  for (const viewer of [a, b]) {
    await viewer.barrier()
    t.notOk(viewer.events.some((e) => e.type === 'viewer_status'), `${viewer.name} gets no viewer_status`)
  }
  const outsider = await TestClient.connect(wsUrl, { userId: 'vs-out' }, t)
  t.equal((await outsider.request('playback_report', { roomId, currentTime: 1, isPlaying: true, at })).data.code, 'NOT_IN_ROOM')
})

t.test('1.1 validation: videoUrl must be http(s), room names refuse control and format characters', async (t) => {
  const { roomId, host } = await startParty(wsUrl, t, 'val11-h')
  for (const videoUrl of ['javascript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'file:///etc/passwd', 'example.com/movie.mp4', 'JAVASCRIPT:alert(1)']) {
    const reply = await host.request('host_sync', { roomId, videoUrl, currentTime: 0, isPlaying: false })
    t.equal(reply.data.code, 'VALIDATION_FAILED', videoUrl)
  }
  t.equal((await host.request('host_sync', { roomId, videoUrl: 'HTTPS://Example.com/a.mp4', currentTime: 0, isPlaying: false })).type, 'ack', 'schemes are case-insensitive')
  for (const roomName of ['evil\u202Etxt.exe', 'zero\u200Bwidth', 'ansi \u001b[31mred', 'bom\uFEFF', 'isolate\u2066x', 'line\nbreak', 'c1\u0085']) {
    t.equal((await host.request('create_room', { roomName })).data.code, 'VALIDATION_FAILED', JSON.stringify(roomName))
  }
  t.equal((await host.request('create_room', { roomName: 'Soirée ciné 🎬 日本' })).type, 'room_created', 'letters, accents, emoji and CJK are fine')
})
