/**
 * Catch-up against a real server: a chat frame lost on the wire is noticed at the next event (a seq gap), the
 * room rejoins with since and the server replays what was missed; every line reaches the room once, in order.
 */
import t from 'tap'
import WebSocket from 'ws'
import { WatchPartyClient } from '@watch-party/client'
import { createTestApp } from '../helpers/app.js'
import { lossyWebSocket, type Frame, type Loss } from './helpers/lossy-socket.js'

t.test('a dropped stream frame: the client notices the gap, rejoins with since, and recovers the line', async (t) => {
  const app = await createTestApp(t, { listen: true })
  const alice = new WatchPartyClient({ url: app.wsUrl, userId: 'alice', WebSocket })
  t.teardown(() => { alice.close() })
  const sent: Frame[] = []
  const loss: Loss = {
    dropped: [],
    dropOutgoing: (frame) => { sent.push(frame); return false },
    // The first copy of 'lost on the wire' never reaches bob.
    dropIncoming: (frame) => frame.type === 'chat' && frame.data?.message === 'lost on the wire' && loss.dropped.length === 0
  }
  const bob = new WatchPartyClient({ url: app.wsUrl, userId: 'bob', WebSocket: lossyWebSocket(loss) })
  t.teardown(() => { bob.close() })
  await Promise.all([alice.connect(), bob.connect()])
  t.ok(bob.features.includes('catch_up'), 'the server has catch-up')
  const hosted = await alice.createRoom('gap')
  const room = await bob.joinRoom(hosted.id)
  const seen: string[] = []
  room.on('chat', (line) => { seen.push(`${line.message}${line.replayed ? ' (replayed)' : ''}`) })
  const recovered = new Promise<number[]>((resolve) => room.once('recovered', ({ events }) => { resolve(events.map((e) => e.seq)) }))
  room.on('reset', () => { seen.push('reset') })

  await hosted.sendChat('first')
  const lost = await hosted.sendChat('lost on the wire')
  const after = await hosted.sendChat('after the gap')
  const replayedSeqs = await recovered
  t.equal(loss.dropped.length, 1, 'one frame was dropped')
  const rejoins = sent.filter((f) => f.type === 'join_room' && f.data?.since !== undefined)
  t.equal(rejoins.length, 1, 'one rejoin with since')
  t.same(rejoins[0]!.data.since, { epoch: room.position!.epoch, seq: lost.seq! - 1 }, 'since: the last seq before the gap')
  t.same(replayedSeqs, [lost.seq, after.seq], 'the replay: the lost event and the one that showed the gap')
  t.same(seen, ['first', 'lost on the wire (replayed)', 'after the gap (replayed)'], 'each line once, in order, no reset')
  await hosted.sendChat('live again')
  await bob.request('ping', {}) // every frame sent before the pong has arrived
  t.same(room.chat.map((l) => l.message), ['first', 'lost on the wire', 'after the gap', 'live again'])
  t.same(room.chat.map((l) => l.seq), hosted.chat.map((l) => l.seq), 'the same positions as the host\'s copy')
})

t.test('more missed than the server replays: the room resets to the snapshot, with the chat history', async (t) => {
  // REPLAY_MAX_BYTES at its minimum (1 KiB): a dozen 200-character lines are more than one replay.
  const app = await createTestApp(t, { listen: true, env: { REPLAY_MAX_BYTES: '1024', CHAT_HISTORY_SIZE: '5' } })
  const alice = new WatchPartyClient({ url: app.wsUrl, userId: 'alice', WebSocket })
  t.teardown(() => { alice.close() })
  const loss: Loss = { dropped: [] }
  const bob = new WatchPartyClient({ url: app.wsUrl, userId: 'bob', WebSocket: lossyWebSocket(loss) })
  t.teardown(() => { bob.close() })
  await Promise.all([alice.connect(), bob.connect()])
  const hosted = await alice.createRoom('too much')
  const room = await bob.joinRoom(hosted.id)
  const seen: string[] = []
  room.on('chat', (line) => { seen.push(line.message) })
  const reset = new Promise<string>((resolve) => room.once('reset', ({ reason }) => { resolve(reason) }))
  room.on('recovered', () => { seen.push('recovered') })

  loss.dropIncoming = (frame) => frame.type === 'chat' // bob hears no chat for a while
  const lines: string[] = []
  for (let i = 1; i <= 12; i++) lines.push((await hosted.sendChat(`${String(i).padStart(2, '0')} ${'x'.repeat(200)}`)).message)
  await bob.request('ping', {}) // every chat frame has reached bob's socket (and was dropped)
  loss.dropIncoming = undefined
  t.equal(loss.dropped.length, 12)
  await hosted.sendChat('the one that shows the gap')
  t.equal(await reset, 'not_recovered', 'the server could not replay it all: reset')
  t.same(seen, [], 'no line emitted one by one, and no recovered')
  t.same(room.chat.map((l) => l.message), [...lines.slice(-4), 'the one that shows the gap'], 'the chat is the history of the snapshot (its last 5 lines)')
  t.same(room.position?.seq, hosted.position?.seq, 'the room is at the host\'s position again')
  await hosted.sendChat('live again')
  await bob.request('ping', {})
  t.same(seen, ['live again'], 'then live as before')
})
