import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { createTestApp } from '../helpers/app.js'

const { app } = await createTestApp(t)

type Inject = Awaited<ReturnType<typeof app.inject>>
interface RoomBody { id: string, hostId: string, name: string, isActive: boolean, createdAt: string, participants: string[], currentVideo: unknown }

/** Every REST error is exactly {error, message, code} with the status the code stands for. */
function assertError (t: Test, res: Inject, status: number, code: string): void {
  t.equal(res.statusCode, status, `status ${status}`)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message'], 'exactly error, message and code')
  t.equal(body.code, code)
  t.type(body.error, 'string')
  t.ok(body.message.length > 0, 'a message for humans')
}

/** null: no identity at all. */
const as = (userId: string | null) => userId === null ? {} : { 'x-user-id': userId }
const get = async (url: string, userId: string | null = 'reader'): Promise<Inject> =>
  await app.inject({ method: 'GET', url, headers: as(userId) })
const del = async (roomId: string, userId: string | null): Promise<Inject> =>
  await app.inject({ method: 'DELETE', url: `/rooms/${roomId}`, headers: as(userId) })
const create = async (hostId: string, name: string): Promise<RoomBody> => {
  const res = await app.inject({ method: 'POST', url: '/rooms', headers: as(hostId), payload: { name } })
  if (res.statusCode !== 201) throw new Error(`room not created: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('GET /rooms/{id}', async (t) => {
  const room = await create('alice', 'Readable')

  t.test('returns the room to anyone', async (t) => {
    const res = await get(`/rooms/${room.id}`, 'bob')
    t.equal(res.statusCode, 200)
    t.same(res.json(), room)
  })

  t.test('accepts the id in upper case', async (t) => {
    const res = await get(`/rooms/${room.id.toUpperCase()}`)
    t.equal(res.statusCode, 200)
    t.equal(res.json().id, room.id)
  })

  t.test('a path id that is not a UUID is 400 INVALID_ROOM_ID', async (t) => {
    for (const id of ['not-a-uuid', '123', `${room.id}x`, 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz']) {
      assertError(t, await get(`/rooms/${id}`), 400, 'INVALID_ROOM_ID')
    }
  })

  t.test('an unknown room is 404 ROOM_NOT_FOUND', async (t) => {
    const id = randomUUID()
    const res = await get(`/rooms/${id}`)
    assertError(t, res, 404, 'ROOM_NOT_FOUND')
    t.match(res.json().message, id, 'the message names the room')
  })

  t.test('without a user id it is 401 UNAUTHORIZED', async (t) => {
    assertError(t, await get(`/rooms/${room.id}`, null), 401, 'UNAUTHORIZED')
  })
})

t.test('DELETE /rooms/{id}', async (t) => {
  const room = await create('alice', 'To be closed')

  t.test('a user who is not the host gets 403 NOT_HOST and the room stays open', async (t) => {
    assertError(t, await del(room.id, 'bob'), 403, 'NOT_HOST')
    t.equal((await get(`/rooms/${room.id}`)).json().isActive, true)
  })

  t.test('without a user id it is 401 UNAUTHORIZED', async (t) => {
    assertError(t, await del(room.id, null), 401, 'UNAUTHORIZED')
  })

  t.test('a bad id is 400 INVALID_ROOM_ID, an unknown one 404 ROOM_NOT_FOUND', async (t) => {
    assertError(t, await del('not-a-uuid', 'alice'), 400, 'INVALID_ROOM_ID')
    assertError(t, await del(randomUUID(), 'alice'), 404, 'ROOM_NOT_FOUND')
  })

  t.test('the host closes it with 204 and an empty body', async (t) => {
    const res = await del(room.id, 'alice')
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
  })

  t.test('a closed room can still be read, with isActive false', async (t) => {
    const res = await get(`/rooms/${room.id}`)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { ...room, isActive: false })
  })

  t.test('closing again is 204 for the host and still 403 for anyone else', async (t) => {
    t.equal((await del(room.id, 'alice')).statusCode, 204)
    assertError(t, await del(room.id, 'bob'), 403, 'NOT_HOST')
    t.equal((await get(`/rooms/${room.id}`)).json().isActive, false)
  })

  t.test('an upper-case id closes the same room', async (t) => {
    const other = await create('alice', 'Closed by upper-case id')
    t.equal((await del(other.id.toUpperCase(), 'alice')).statusCode, 204)
    t.equal((await get(`/rooms/${other.id}`)).json().isActive, false, 'read back closed under its own id')
    const listed = (await get('/rooms?limit=100')).json().rooms.map((r: RoomBody) => r.id)
    t.notOk(listed.includes(other.id), 'no longer listed')
  })
})

t.test('GET /rooms', async (t) => {
  const older = await create('lister-1', 'Older')
  const closed = await create('lister-2', 'Closed')
  const newer = await create('lister-3', 'Newer')
  t.equal((await del(closed.id, 'lister-2')).statusCode, 204)

  t.test('lists open rooms only, newest first, with a default page size', async (t) => {
    const res = await get('/rooms')
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['nextCursor', 'rooms'])
    const ids: string[] = body.rooms.map((r: RoomBody) => r.id)
    t.notOk(ids.includes(closed.id), 'the closed room is not listed')
    t.ok(body.rooms.every((r: RoomBody) => r.isActive), 'every listed room is open')
    t.ok(ids.indexOf(newer.id) >= 0 && ids.indexOf(newer.id) < ids.indexOf(older.id), 'newer before older')
    t.same(body.rooms.find((r: RoomBody) => r.id === older.id), older, 'listed rooms have the Room shape')
    t.equal(body.nextCursor, null, 'everything fits on the first page')
  })

  t.test('limit and cursor are optional and bounded', async (t) => {
    const one = await get('/rooms?limit=1')
    t.equal(one.statusCode, 200)
    t.equal(one.json().rooms.length, 1)
    t.type(one.json().nextCursor, 'string')
    t.equal((await get('/rooms?limit=100')).statusCode, 200)
    for (const limit of ['0', '101', '-1', 'abc', '', '1.5', '1e1', '0x10', ' 5']) {
      await t.test(`limit=${limit} is 400 VALIDATION_FAILED`, async (t) => {
        assertError(t, await get(`/rooms?limit=${limit}`), 400, 'VALIDATION_FAILED')
      })
    }
  })

  t.test('a cursor this server did not hand out is 400 VALIDATION_FAILED', async (t) => {
    const forged = [
      'garbage',
      Buffer.from('{"not":"an array"}').toString('base64url'),
      Buffer.from(JSON.stringify([Date.now(), 'not-a-uuid'])).toString('base64url'),
      Buffer.from(JSON.stringify(['yesterday', randomUUID()])).toString('base64url'),
      Buffer.from(JSON.stringify([-1, randomUUID()])).toString('base64url'),
      'x'.repeat(201)
    ]
    for (const cursor of forged) {
      assertError(t, await get(`/rooms?cursor=${encodeURIComponent(cursor)}`), 400, 'VALIDATION_FAILED')
    }
    assertError(t, await get('/rooms?cursor='), 400, 'VALIDATION_FAILED')
  })

  t.test('without a user id it is 401 UNAUTHORIZED', async (t) => {
    assertError(t, await get('/rooms', null), 401, 'UNAUTHORIZED')
  })
})
