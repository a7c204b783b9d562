import t from 'tap'
import { createTestApp } from '../helpers/app.js'

t.test('a room created over REST can be read back', async (t) => {
  const { app } = await createTestApp(t)
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'alice' }, payload: { name: 'Friday movie' } })
  t.equal(created.statusCode, 201)
  const room = created.json()
  t.match(room, { hostId: 'alice', name: 'Friday movie', participants: [], isActive: true, currentVideo: null })
  const read = await app.inject({ method: 'GET', url: `/rooms/${room.id as string}`, headers: { 'x-user-id': 'bob' } })
  t.same(read.json(), room)
})
