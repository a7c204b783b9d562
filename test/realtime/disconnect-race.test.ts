import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { TestClient } from '../helpers/ws-client.js'
import type { Database } from '../../src/db/client.js'

// A database whose transactions wait at a gate the test opens: a write can be held in flight.
const database = await createTestDatabase(t)
let gate: Promise<void> = Promise.resolve()
const gatedDb = new Proxy(database.handle.db, {
  get (target, prop, receiver) {
    if (prop === 'transaction') {
      return async (...args: Parameters<Database['transaction']>) => {
        await gate
        return await target.transaction(...args)
      }
    }
    return Reflect.get(target, prop, receiver)
  }
})
const clock = new FakeClock()
const GRACE = 10_000
const { wsUrl, app } = await createTestApp(t, {
  listen: true,
  database: { ...database, handle: { ...database.handle, db: gatedDb } },
  deps: { clock },
  env: { DISCONNECT_GRACE_MS: String(GRACE) }
})

async function openConnections (): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  return Number(/^ws_connections (\d+)/m.exec(text)?.[1])
}

t.test('a socket that drops while its join is being written still gets the grace, then leaves', async (t) => {
  const host = await TestClient.connect(wsUrl, { userId: 'race-h' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'race' }, 'room_created')).data.room.id as string
  const viewer = await TestClient.connect(wsUrl, { userId: 'race-v' }, t)
  let open!: () => void
  gate = new Promise((resolve) => { open = resolve })
  viewer.send('join_room', { roomId }, 'j')
  viewer.terminate()
  await viewer.closed
  for (let i = 0; i < 200 && await openConnections() > 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await openConnections(), 1, 'the server saw the socket close while the join was in flight')
  open()
  t.same((await host.nextOfType('participant_joined')).data, { roomId, userId: 'race-v' }, 'the join was written and counts')
  clock.advance(GRACE)
  t.same((await host.nextOfType('participant_left')).data, { roomId, userId: 'race-v' }, 'the grace covered it: not stuck in the room')
})
