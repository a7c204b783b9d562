/**
 * A room's stream across kill -9 of the server process: every acknowledged chat line is in the history, the
 * sequence continues in the same epoch (no position handed out twice), and a client that was away catches up
 * with exactly what it missed, announced to nobody.
 */
import t from 'tap'
import { serverDatabase, startServer } from '../helpers/server-process.js'
import { TestClient } from '../helpers/ws-client.js'

t.setTimeout(240_000)

t.test('after kill -9 the history, the chat and the epoch are back, and the sequence goes on', async (t) => {
  const database = await serverDatabase(t)
  const env = { DISCONNECT_GRACE_MS: '60000' }
  const first = await startServer(t, { database, env })

  const host = await TestClient.connect(first.wsUrl, { userId: 'kh' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'kill -9' }, 'room_created')).data.room.id as string
  const viewer = await TestClient.connect(first.wsUrl, { userId: 'kv' }, t)
  await viewer.expect('join_room', { roomId }, 'room_joined')
  await host.expect('chat', { roomId, message: 'seen by both' }, 'chat')
  const seen = await viewer.next((e) => e.type === 'chat' && e.data.message === 'seen by both')
  const since = { epoch: seen.epoch as string, seq: seen.seq as number }

  viewer.terminate()
  await viewer.closed
  const missed = []
  for (const message of ['missed one', 'missed two']) missed.push(await host.expect('chat', { roomId, message }, 'chat'))

  first.kill('SIGKILL')
  t.equal((await first.exited).signal, 'SIGKILL')
  await host.closed

  const second = await startServer(t, { database, env })
  const back = await TestClient.connect(second.wsUrl, { userId: 'kv' }, t)
  const joined = await back.expect('join_room', { roomId, since }, 'room_joined')
  t.equal(joined.data.recovered, true, 'the history survived the crash')
  t.equal(joined.data.epoch, since.epoch, 'same epoch')
  t.equal(joined.data.seq, missed.at(-1)!.seq)
  t.same(joined.data.chat.map((c: { data: { message: string } }) => c.data.message), ['seen by both', 'missed one', 'missed two'], 'chat history read back')
  await back.barrier()
  t.same(back.events.filter((e) => typeof e.seq === 'number').map((e) => ({ seq: e.seq, epoch: e.epoch, data: e.data })),
    missed.map((e) => ({ seq: e.seq, epoch: e.epoch, data: e.data })), 'exactly the lines it missed, as first sent')

  const hostBack = await TestClient.connect(second.wsUrl, { userId: 'kh' }, t)
  const hostJoined = await hostBack.expect('join_room', { roomId, since: { epoch: since.epoch, seq: missed.at(-1)!.seq as number } }, 'room_joined')
  t.match(hostJoined.data, { recovered: true, role: 'host' }, 'the host rejoins within its fresh grace, still host')
  const next = await hostBack.expect('chat', { roomId, message: 'after the crash' }, 'chat')
  t.equal(next.seq, (missed.at(-1)!.seq as number) + 1, 'the next position, never one handed out before')
  t.equal(next.epoch, since.epoch)
  await back.next((e) => e.type === 'chat' && e.data.message === 'after the crash')
  t.same([...back.received('participant_joined'), ...back.received('participant_left'), ...hostBack.received('participant_left')], [], 'rejoining is announced to nobody')
})
