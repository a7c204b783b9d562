/**
 * Write-through edges of the repository, on real databases: a join into a room that is no longer active and a
 * leave of someone who is not there write nothing (no participant row, no audit row, no stream event), and
 * the room list carries the participants of rooms this process has not loaded.
 */
import t from 'tap'
import { RoomRepository } from '../../src/rooms/room-repository.js'
import { createTestDatabase } from '../helpers/database.js'

const database = await createTestDatabase(t)
const repository = new RoomRepository(database.handle.db)
const event = (seq: number, type: string) => ({ seq, type, data: {} })

t.test('a join into a closed room writes nothing and answers false', async (t) => {
  const room = await repository.createRoom({ name: 'closing', hostId: 'alice' })
  t.equal(await repository.closeRoom(room.id, 'deleted', 'alice', null, event(1, 'room_closed')), true)
  const audit = (await repository.listEvents(room.id)).length
  t.equal(await repository.addParticipant(room.id, { userId: 'bob', joinedAt: new Date() }, event(2, 'participant_joined')), false)
  t.same((await repository.findRoom(room.id))?.participants, [])
  t.equal((await repository.listEvents(room.id)).length, audit, 'no audit row')
  t.same((await repository.readStream(room.id, 1, 10)), [], 'no stream event')
  t.equal(await repository.appendChat(room.id, event(2, 'chat')), false, 'nor a chat line')
})

t.test('a leave of a user who is not in the room writes nothing and answers false', async (t) => {
  const room = await repository.createRoom({ name: 'leaving', hostId: 'carol', firstParticipant: { userId: 'carol', joinedAt: new Date() } })
  const audit = (await repository.listEvents(room.id)).length
  t.equal(await repository.removeParticipant(room.id, 'nobody', { reason: 'left' }, [event(1, 'participant_left')]), false)
  t.equal(await repository.removeParticipant(room.id, 'nobody', { reason: 'left', hostChange: { from: 'nobody', to: 'carol', reason: 'host_left' } }, [event(1, 'participant_left')]), false)
  t.equal((await repository.listEvents(room.id)).length, audit, 'no left audit row for a leave that removed nobody')
  t.same(await repository.readStream(room.id, 0, 10), [])
  t.equal(await repository.removeParticipant(room.id, 'carol', { reason: 'left' }, [event(1, 'participant_left')]), true)
  t.equal((await repository.listEvents(room.id)).at(-1)?.type, 'left')
})

t.test('the list of open rooms carries their participants from the database', async (t) => {
  const room = await repository.createRoom({ name: 'listed', hostId: 'dan', firstParticipant: { userId: 'dan', joinedAt: new Date() } })
  await repository.addParticipant(room.id, { userId: 'erin', joinedAt: new Date(Date.now() + 1) }, event(1, 'participant_joined'))
  const page = await repository.listActiveRooms(100)
  t.same(page.find((r) => r.id === room.id)?.participants.map((p) => p.userId), ['dan', 'erin'])
  t.equal(page.find((r) => r.id === room.id)?.lastSeq, 1)
})
