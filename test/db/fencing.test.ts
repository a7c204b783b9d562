/**
 * Fencing (cluster mode) at the repository, on real databases: every write of a room's owner carries the token
 * it claimed the room with; once another node claimed the room (a higher token), the stale owner's writes change
 * nothing and fail with FencedOutError, while the new owner's go through.
 */
import t from 'tap'
import { FencedOutError } from '../../src/errors.js'
import { RoomRepository } from '../../src/rooms/room-repository.js'
import { createTestDatabase } from '../helpers/database.js'

const database = await createTestDatabase(t)
const tokens = new Map<string, number>()
const stale = new RoomRepository(database.handle.db, (roomId) => tokens.get(`stale:${roomId}`))
const fresh = new RoomRepository(database.handle.db, (roomId) => tokens.get(`fresh:${roomId}`))

t.test('a stale owner changes nothing; the new owner writes', async (t) => {
  const room = await fresh.createRoom({ name: 'fenced', hostId: 'alice', firstParticipant: { userId: 'alice', joinedAt: new Date() } })
  const first = await stale.claimRoom(room.id, 'node-a')
  const second = await fresh.claimRoom(room.id, 'node-b')
  t.ok(first !== null && second !== null && second > first, `tokens rise at every claim (${String(first)} then ${String(second)})`)
  tokens.set(`stale:${room.id}`, first!)
  tokens.set(`fresh:${room.id}`, second!)
  const before = await fresh.findRoom(room.id)
  const event = (seq: number, type: string) => ({ seq, type, data: { roomId: room.id } })

  await t.rejects(stale.addParticipant(room.id, { userId: 'bob', joinedAt: new Date() }, event(1, 'participant_joined')), FencedOutError, 'join')
  await t.rejects(stale.appendChat(room.id, event(1, 'chat')), FencedOutError, 'chat')
  await t.rejects(stale.removeParticipant(room.id, 'alice', { reason: 'left' }, [event(1, 'participant_left')]), FencedOutError, 'leave')
  await t.rejects(stale.removeParticipant(room.id, 'alice', { reason: 'left', hostChange: { from: 'alice', to: 'alice', reason: 'host_left' } }, [event(1, 'participant_left')]), FencedOutError, 'leave with a hand-over')
  await t.rejects(stale.transferHost(room.id, { from: 'alice', to: 'bob', reason: 'transfer' }, 'alice', event(1, 'host_changed')), FencedOutError, 'transfer')
  await t.rejects(stale.closeRoom(room.id, 'deleted', 'alice', null, event(1, 'room_closed')), FencedOutError, 'close')
  await stale.savePlayback(room.id, { videoUrl: 'https://example.com/stale.mp4', currentTime: 1, isPlaying: true, playbackRate: 1, updatedAt: Date.now() })
  const after = await fresh.findRoom(room.id)
  t.same(after, before, 'the room, its participants, host, playback and stream are as they were')
  t.same(await fresh.readStream(room.id, 0, 10), [], 'no stream event was written')

  t.equal(await fresh.addParticipant(room.id, { userId: 'bob', joinedAt: new Date() }, event(1, 'participant_joined')), true, 'the new owner\'s join goes through')
  t.equal(await fresh.appendChat(room.id, event(2, 'chat')), true)
  t.same((await fresh.findRoom(room.id))?.participants.map((p) => p.userId), ['alice', 'bob'])
  t.equal((await fresh.findRoom(room.id))?.lastSeq, 2)
})

t.test('one process (no fence) writes as before', async (t) => {
  const solo = new RoomRepository(database.handle.db)
  const room = await solo.createRoom({ name: 'solo', hostId: 'carol' })
  t.equal(await solo.appendChat(room.id, { seq: 1, type: 'chat', data: {} }), true)
})
