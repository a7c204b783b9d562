import { asc, eq } from 'drizzle-orm'
import t from 'tap'
import { roomEvents, roomParticipants } from '../../src/db/schema.js'
import { createTestApp } from '../helpers/app.js'
import { startParty, TestClient } from '../helpers/ws-client.js'

// Joins that arrive while another is being written are committed together (group commit): every one of them
// must still be answered only once committed, with its own audit row, in the order the server answered them.
const { wsUrl, app, database } = await createTestApp(t, { listen: true })
const db = database.handle.db

t.test('joins sent at once into several rooms are each committed, with their audit row, in join order', async (t) => {
  const parties = await Promise.all(['host-a', 'host-b', 'host-c'].map(async (host) => await startParty(wsUrl, t, host)))
  const viewers = await Promise.all(Array.from({ length: 36 }, async (_, i) => await TestClient.connect(wsUrl, { userId: `viewer-${i}` }, t)))
  const answers = await Promise.all(viewers.map(async (viewer, i) => await viewer.request('join_room', { roomId: parties[i % 3]!.roomId })))
  t.same(answers.map((a) => a.type), answers.map(() => 'room_joined'), 'every join answered room_joined')

  for (const [index, party] of parties.entries()) {
    const expected = viewers.map((_, i) => `viewer-${i}`).filter((_, i) => i % 3 === index)
    const live = (await app.inject({ method: 'GET', url: `/rooms/${party.roomId}`, headers: { 'x-user-id': 'auditor' } })).json()
    t.same([...live.participants].sort(), [party.host.name, ...expected].sort(), `room ${index}: everyone is in`)
    const stored = await db.select({ userId: roomParticipants.userId }).from(roomParticipants)
      .where(eq(roomParticipants.roomId, party.roomId)).orderBy(asc(roomParticipants.joinedAt), asc(roomParticipants.seq))
    t.same(stored.map((p) => p.userId), live.participants, `room ${index}: the database has the same participants in the same order`)
    const joinedEvents = await db.select({ actorId: roomEvents.actorId }).from(roomEvents)
      .where(eq(roomEvents.roomId, party.roomId)).orderBy(asc(roomEvents.id))
    t.same(joinedEvents.map((e) => e.actorId).slice(1).sort(), live.participants.slice().sort(), `room ${index}: one audit row per join`)
    const lastSnapshot = answers.filter((_, i) => i % 3 === index).map((a) => a.data.room.participants as string[])
      .reduce((a, b) => (b.length > a.length ? b : a))
    t.same(lastSnapshot, live.participants, `room ${index}: the last room_joined snapshot is the join order`)
  }
})

t.test('a join already committed is not written again when the same user joins again at once', async (t) => {
  const party = await startParty(wsUrl, t, 'host-d')
  const tabs = await Promise.all([1, 2, 3].map(async () => await TestClient.connect(wsUrl, { userId: 'many-tabs' }, t)))
  const answers = await Promise.all(tabs.map(async (tab) => await tab.request('join_room', { roomId: party.roomId })))
  t.same(answers.map((a) => a.type), ['room_joined', 'room_joined', 'room_joined'])
  const rows = await db.select({ userId: roomParticipants.userId }).from(roomParticipants).where(eq(roomParticipants.roomId, party.roomId))
  t.same(rows.map((r) => r.userId).sort(), ['host-d', 'many-tabs'])
  const joins = await db.select({ actorId: roomEvents.actorId, type: roomEvents.type }).from(roomEvents).where(eq(roomEvents.roomId, party.roomId))
  t.equal(joins.filter((e) => e.type === 'joined' && e.actorId === 'many-tabs').length, 1, 'one join in the audit log')
})
