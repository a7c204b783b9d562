import t from 'tap'
import { rooms as roomsTable } from '../../src/db/schema.js'
import { createTestApp } from '../helpers/app.js'

const { app, database } = await createTestApp(t)

interface RoomBody { id: string, name: string, createdAt: string, isActive: boolean }
interface Page { rooms: RoomBody[], nextCursor: string | null }

const headers = { 'x-user-id': 'walker' }

async function create (i: number): Promise<RoomBody> {
  // Several hosts, so MAX_ROOMS_PER_HOST does not get in the way.
  const res = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': `host-${i % 5}` }, payload: { name: `room ${i}` } })
  if (res.statusCode !== 201) throw new Error(`room ${i} not created: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function page (limit: number, cursor: string | null): Promise<Page> {
  const query = new URLSearchParams({ limit: String(limit), ...(cursor === null ? {} : { cursor }) })
  const res = await app.inject({ method: 'GET', url: `/rooms?${query.toString()}`, headers })
  if (res.statusCode !== 200) throw new Error(`page not served: ${res.statusCode} ${res.body}`)
  return res.json()
}

/** Newest first: createdAt descending; rooms created in the same millisecond by id descending. */
function newerFirst (a: RoomBody, b: RoomBody): number {
  return Date.parse(b.createdAt) - Date.parse(a.createdAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)
}
const newestFirst = (rooms: RoomBody[]): string[] => [...rooms].sort(newerFirst).map((r) => r.id)

// Created one after another, so creation order is oldest first.
const created: RoomBody[] = []
for (let i = 0; i < 25; i++) created.push(await create(i))
const hostOf = (room: RoomBody): string => `host-${created.indexOf(room) % 5}`

async function close (room: RoomBody): Promise<number> {
  const res = await app.inject({ method: 'DELETE', url: `/rooms/${room.id}`, headers: { 'x-user-id': hostOf(room) } })
  return res.statusCode
}

const closed = [3, 10, 17].map((i) => created[i]).filter((r) => r !== undefined)
for (const room of closed) {
  if (await close(room) !== 204) throw new Error(`room ${room.name} not closed`)
}
const open = created.filter((r) => !closed.includes(r))

t.test('walking pages of 7 sees every open room exactly once, newest first', async (t) => {
  const seen: RoomBody[] = []
  const sizes: number[] = []
  let cursor: string | null = null
  for (let walked = 0; walked < 10; walked++) {
    const p: Page = await page(7, cursor)
    sizes.push(p.rooms.length)
    seen.push(...p.rooms)
    cursor = p.nextCursor
    if (cursor === null) break
  }
  t.equal(cursor, null, 'the last page has nextCursor null')
  t.same(sizes, [7, 7, 7, 1], '22 open rooms in pages of 7')
  const ids = seen.map((r) => r.id)
  t.equal(new Set(ids).size, ids.length, 'no room twice')
  t.same([...ids].sort(), open.map((r) => r.id).sort(), 'every open room, and only open rooms')
  t.same(ids, newestFirst(open), 'newest first across page boundaries')
  t.ok(seen.every((r) => r.isActive), 'every listed room is open')
})

t.test('a page that ends exactly at the last room has nextCursor null', async (t) => {
  const first = await page(11, null)
  t.type(first.nextCursor, 'string')
  const second = await page(11, first.nextCursor)
  t.equal(second.rooms.length, 11)
  t.equal(second.nextCursor, null, 'no empty page at the end')
})

t.test('one page as large as the list holds everything', async (t) => {
  const all = await page(100, null)
  t.equal(all.rooms.length, open.length)
  t.equal(all.nextCursor, null)
})

t.test('rooms created or closed during a walk neither repeat nor shift the rest', async (t) => {
  const first = await page(7, null)
  const newcomer = await create(100)
  const victim = open[5] // on a later page
  if (victim === undefined) throw new Error('fixture too small')
  t.equal(await close(victim), 204)

  const seen = [...first.rooms]
  let cursor = first.nextCursor
  while (cursor !== null) {
    const p = await page(7, cursor)
    seen.push(...p.rooms)
    cursor = p.nextCursor
  }
  const ids = seen.map((r) => r.id)
  t.equal(new Set(ids).size, ids.length, 'no room twice')
  t.notOk(ids.includes(newcomer.id), 'a room newer than the cursor is not on later pages')
  t.notOk(ids.includes(victim.id), 'a room closed before its page was read is not listed')
  t.same(ids, newestFirst(open).filter((id) => id !== victim.id), 'every other room, in order')
  t.equal((await page(1, null)).rooms[0]?.id, newcomer.id, 'a fresh walk starts with the newcomer')
})

t.test('rooms created in the same millisecond are split across pages without loss', async (t) => {
  // Written straight to the table: the only way to be sure several rooms share one createdAt.
  const sameInstant = new Date('2020-01-01T00:00:00.000Z')
  const twins = await database.handle.db.insert(roomsTable)
    .values(Array.from({ length: 10 }, (_, i) => ({ name: `twin ${i}`, hostId: 'twin-host', createdAt: sameInstant })))
    .returning({ id: roomsTable.id })
  const seen: RoomBody[] = []
  let cursor: string | null = null
  do {
    const p: Page = await page(3, cursor)
    seen.push(...p.rooms)
    cursor = p.nextCursor
  } while (cursor !== null)
  const ids = seen.map((r) => r.id)
  t.equal(new Set(ids).size, ids.length, 'no room twice')
  const twinIds = twins.map((r) => r.id)
  t.same(ids.slice(-10), [...twinIds].sort().reverse(), 'the oldest rooms come last, ties by id descending')
  t.same(seen.slice(-10).map((r) => r.createdAt), Array(10).fill(sameInstant.toISOString()))
})
