import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { TestClient, type Teardown } from '../helpers/ws-client.js'

const database = await createTestDatabase(t)
const clock = new FakeClock()
const { wsUrl, app } = await createTestApp(t, {
  listen: true,
  database,
  deps: { clock },
  env: {
    WS_MESSAGES_PER_SECOND: '5',
    WS_MESSAGE_BURST: '5',
    WS_FLOOD_LIMIT: '20',
    MAX_CONNECTIONS_PER_USER: '2',
    MAX_ROOMS_PER_CONNECTION: '2',
    MAX_ROOMS_PER_HOST: '100',
    WS_MEMBERSHIP_WRITES_PER_SECOND: '2',
    WS_MEMBERSHIP_WRITE_BURST: '3'
  }
})
const connect = async (tt: Teardown, userId: string): Promise<TestClient> => await TestClient.connect(wsUrl, { userId }, tt)

/**
 * Connects once the server has heard of the user's earlier closes: a client's `closed` can resolve a moment
 * before the server's, and the connection cap refuses (1013) until then. Retries as a client would on 1013.
 */
async function reconnect (tt: Teardown, userId: string): Promise<TestClient> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const client = await connect(tt, userId).catch(() => undefined)
    if (client !== undefined) return client
  }
  throw new Error(`${userId} could not reconnect`)
}

const pings = async (client: TestClient, n: number): Promise<string[]> => {
  const answers: string[] = []
  for (let i = 0; i < n; i++) {
    const reply = await client.request('ping', {})
    answers.push(reply.type === 'pong' ? 'pong' : reply.data.code as string)
  }
  return answers
}

t.test('a connection over its message rate gets RATE_LIMITED, then its tokens come back', async (t) => {
  const client = await connect(t, 'rate')
  for (let i = 0; i < 5; i++) t.equal((await client.request('ping', {})).type, 'pong', `message ${i + 1} of the burst`)
  const refused = await client.request('ping', {})
  t.equal(refused.type, 'error')
  t.equal(refused.data.code, 'RATE_LIMITED')
  clock.advance(1000)
  t.equal((await client.request('ping', {})).type, 'pong', 'tokens refill at the configured rate')
})

t.test('the message budget belongs to the user: two connections share it and a reconnect does not refill it', async (t) => {
  clock.advance(10_000)
  const a = await connect(t, 'shared')
  const b = await connect(t, 'shared')
  t.same(await pings(a, 3), ['pong', 'pong', 'pong'])
  t.same(await pings(b, 3), ['pong', 'pong', 'RATE_LIMITED'], 'the second connection has what the first left: 5 in all')
  t.same(await pings(a, 1), ['RATE_LIMITED'])
  a.close()
  b.close()
  await Promise.all([a.closed, b.closed])
  const again = await reconnect(t, 'shared')
  t.same(await pings(again, 1), ['RATE_LIMITED'], 'reconnecting does not refill the bucket')
  clock.advance(1000)
  t.same(await pings(again, 6), ['pong', 'pong', 'pong', 'pong', 'pong', 'RATE_LIMITED'], 'it refills at WS_MESSAGES_PER_SECOND for the user')
  const other = await connect(t, 'someone-else')
  t.same(await pings(other, 1), ['pong'], 'another user has a budget of their own')
})

t.test('the flood counter belongs to the user: a reconnect does not reset it', async (t) => {
  clock.advance(10_000)
  const first = await connect(t, 'reflood')
  for (let i = 0; i < 15; i++) first.send('ping', {}, `a${i}`)
  await first.next((e) => e.replyTo === 'a14')
  t.equal(first.received('error').length, 10, '10 of WS_FLOOD_LIMIT=20 refusals used')
  first.close()
  await first.closed
  const second = await reconnect(t, 'reflood')
  for (let i = 0; i < 15; i++) second.send('ping', {}, `b${i}`)
  const closed = await second.closed
  t.equal(closed.code, 4429, 'closed for flooding after the 21st refusal in 10 s, counted across both connections')
  t.equal(second.received('pong').length, 0, 'the new connection got no fresh burst')
  t.equal(second.received('error').length, 10, 'refusals 11..20 were answered; the 21st closed it')
})

t.test('membership writes are bounded per user (WS_MEMBERSHIP_WRITES_PER_SECOND, burst WS_MEMBERSHIP_WRITE_BURST)', async (t) => {
  clock.advance(10_000)
  const rooms: string[] = []
  for (let i = 0; i < 3; i++) {
    rooms.push((await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'mw-owner' }, payload: { name: `mw ${i}` } })).json().id as string)
  }
  const one = await connect(t, 'mw-user')
  const two = await connect(t, 'mw-user')
  t.equal((await one.request('join_room', { roomId: rooms[0] })).type, 'room_joined')
  t.equal((await two.request('join_room', { roomId: rooms[1] })).type, 'room_joined')
  t.equal((await one.request('leave_room', { roomId: rooms[0] })).type, 'room_left', 'three membership writes: the burst')
  const refused = await two.request('join_room', { roomId: rooms[2] })
  t.equal(refused.data.code, 'RATE_LIMITED', 'the fourth, from the other connection, is refused')
  t.match(refused.data.message, /create_room\/join_room\/leave_room/)
  const room = (await app.inject({ method: 'GET', url: `/rooms/${rooms[2]!}`, headers: { 'x-user-id': 'mw-owner' } })).json()
  t.notOk((room.participants as string[]).includes('mw-user'), 'a refused join wrote nothing')
  t.equal((await one.request('ping', {})).type, 'pong', 'other requests are not affected')
  clock.advance(500)
  t.equal((await two.request('join_room', { roomId: rooms[2] })).type, 'room_joined', 'it refills at 2 a second')
})

t.test('a connection that keeps flooding is closed with 4429', async (t) => {
  const client = await connect(t, 'flood')
  for (let i = 0; i < 60; i++) client.send('ping', {}, `f${i}`)
  const closed = await client.closed
  t.equal(closed.code, 4429)
  t.equal(client.received('pong').length, 5, 'the burst was served')
  t.ok(client.received('error').every((e) => e.data.code === 'RATE_LIMITED'))
  t.equal(client.received('error').length, 20, 'refusals were answered up to the flood limit, then it closed')
})

t.test('a flooding member does not stop the others from receiving every sync', async (t) => {
  clock.advance(10_000)
  const host = await connect(t, 'fl-host')
  const roomId = (await host.expect('create_room', { roomName: 'flooded' }, 'room_created')).data.room.id as string
  const flooder = await connect(t, 'fl-flooder')
  const viewer = await connect(t, 'fl-viewer')
  await flooder.expect('join_room', { roomId }, 'room_joined')
  await viewer.expect('join_room', { roomId }, 'room_joined')
  for (let i = 0; i < 15; i++) flooder.send('chat', { roomId, message: `spam ${i}` }, `spam${i}`)
  await flooder.next((e) => e.replyTo === 'spam14')
  // The burst of 5 paid for join_room and 4 lines; the other 11 were refused.
  t.equal(flooder.received('error').filter((e) => e.data.code === 'RATE_LIMITED').length, 11, 'the flooder is refused')
  for (let i = 0; i < 3; i++) {
    await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: i, isPlaying: true }, 'ack')
  }
  await viewer.barrier()
  t.same(viewer.received('sync').map((e) => e.data.currentTime), [0, 1, 2], 'every sync reached the viewer')
  t.same(viewer.received('chat').map((e) => e.data.message), ['spam 0', 'spam 1', 'spam 2', 'spam 3'], 'refused chat lines were not relayed')
})

t.test('MAX_CONNECTIONS_PER_USER: one more connection is closed with 1013 (try again later), not 4429', async (t) => {
  const first = await connect(t, 'many')
  await connect(t, 'many')
  const third = TestClient.open(wsUrl, { userId: 'many' })
  const closed = await third.closed
  t.equal(closed.code, 1013)
  t.match(closed.reason, /too many connections for this user \(at most 2\); retry later/)
  t.notOk(third.events.some((e) => e.type === 'connected'), 'no hello')
  first.close()
  await first.closed
  // The server may hear of the close a moment after the client: retry as a client would on 1013.
  let retried: TestClient | undefined
  for (let attempt = 0; attempt < 20 && retried === undefined; attempt++) {
    retried = await connect(t, 'many').catch(() => undefined)
  }
  t.equal(retried?.connected.data.userId, 'many', 'once a connection closed, a retry gets in')
})

t.test('MAX_ROOMS_PER_CONNECTION: one more room answers ROOM_LIMIT_REACHED', async (t) => {
  clock.advance(10_000)
  const client = await connect(t, 'roomy')
  const first = (await client.expect('create_room', { roomName: 'one' }, 'room_created')).data.room.id as string
  await client.expect('create_room', { roomName: 'two' }, 'room_created')
  t.equal((await client.request('create_room', { roomName: 'three' })).data.code, 'ROOM_LIMIT_REACHED')
  clock.advance(10_000)
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'other' }, payload: { name: 'elsewhere' } })
  t.equal((await client.request('join_room', { roomId: created.json().id })).data.code, 'ROOM_LIMIT_REACHED')
  t.equal((await client.request('join_room', { roomId: first })).type, 'room_joined', 'rejoining a room it is in is fine')
})

t.test('ROOM_LIMIT_REACHED over REST when a user hosts too many open rooms', async (t) => {
  const own = await createTestApp(t, { database, env: { MAX_ROOMS_PER_HOST: '2' } })
  for (let i = 0; i < 2; i++) {
    t.equal((await own.app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'prolific' }, payload: { name: `r${i}` } })).statusCode, 201)
  }
  const refused = await own.app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'prolific' }, payload: { name: 'r3' } })
  t.equal(refused.statusCode, 429)
  t.equal(refused.json().code, 'ROOM_LIMIT_REACHED')
})

t.test('ALLOWED_ORIGINS: a browser from another origin is refused with 403 before the upgrade', async (t) => {
  const own = await createTestApp(t, { listen: true, database, env: { ALLOWED_ORIGINS: 'https://watch.example.com' } })
  const allowed = await TestClient.connect(own.wsUrl, { userId: 'origin-ok', headers: { origin: 'https://watch.example.com' } }, t)
  t.equal(allowed.connected.data.userId, 'origin-ok')
  await t.rejects(TestClient.connect(own.wsUrl, { userId: 'origin-bad', headers: { origin: 'https://evil.example.com' } }, t), /upgrade refused: 403/)
  const script = await TestClient.connect(own.wsUrl, { userId: 'no-origin' }, t)
  t.equal(script.connected.data.userId, 'no-origin', 'clients without Origin (not browsers) go on to authentication')
})
