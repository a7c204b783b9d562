import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { startParty, TestClient, type Party, type Teardown } from '../helpers/ws-client.js'

const { wsUrl, app, reads, database } = await createTestApp(t, { listen: true, env: { MAX_ROOM_PARTICIPANTS: '3' } })

const connect = async (tt: Teardown, userId: string): Promise<TestClient> =>
  await TestClient.connect(wsUrl, { userId }, tt)

const party = async (tt: Teardown, host: string, ...viewers: string[]): Promise<Party> => await startParty(wsUrl, tt, host, ...viewers)

t.test('create_room makes the sender host of a room it is in', async (t) => {
  const alice = await connect(t, 'alice')
  const created = await alice.request('create_room', { roomName: 'Friday movie' })
  t.equal(created.type, 'room_created')
  t.equal(created.data.role, 'host')
  t.type(created.data.serverTime, 'number')
  t.match(created.data.room, { hostId: 'alice', name: 'Friday movie', participants: ['alice'], isActive: true, currentVideo: null })
  t.equal(created.channel, `room-${created.data.room.id as string}`)
  const rest = await app.inject({ method: 'GET', url: `/rooms/${created.data.room.id as string}`, headers: { 'x-user-id': 'bob' } })
  t.same(rest.json().participants, ['alice'], 'REST shows the live participants')
})

t.test('join_room answers room_joined and tells the others, once', async (t) => {
  const { roomId, host } = await party(t, 'h1')
  const bob = await connect(t, 'bob1')
  const joined = await bob.request('join_room', { roomId })
  t.equal(joined.type, 'room_joined')
  t.equal(joined.data.role, 'viewer')
  t.same(joined.data.room.participants, ['h1', 'bob1'])
  const announced = await host.nextOfType('participant_joined')
  t.same(announced.data, { roomId, userId: 'bob1' })
  t.equal(announced.channel, `room-${roomId}`)

  const again = await bob.request('join_room', { roomId })
  t.equal(again.type, 'room_joined', 'joining again is idempotent')
  await host.barrier()
  t.equal(host.received('participant_joined').length, 1, 'no second participant_joined')
})

t.test('a host joining a REST-created room gets role host', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'resthost' }, payload: { name: 'REST room' } })
  const roomId = created.json().id as string
  const host = await connect(t, 'resthost')
  const joined = await host.expect('join_room', { roomId }, 'room_joined')
  t.equal(joined.data.role, 'host')
  t.same(joined.data.room.participants, ['resthost'])
})

t.test('join_room errors', async (t) => {
  const bob = await connect(t, 'bob2')
  t.equal((await bob.request('join_room', { roomId: 'nope' })).data.code, 'INVALID_ROOM_ID')
  t.equal((await bob.request('join_room', { roomId: '00000000-0000-4000-8000-000000000000' })).data.code, 'ROOM_NOT_FOUND')
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'closer' }, payload: { name: 'to close' } })
  const roomId = created.json().id as string
  await app.inject({ method: 'DELETE', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'closer' } })
  t.equal((await bob.request('join_room', { roomId })).data.code, 'ROOM_CLOSED')
})

t.test('MAX_ROOM_PARTICIPANTS caps a room: the next joiner gets ROOM_FULL', async (t) => {
  const { roomId } = await party(t, 'full-h', 'full-a', 'full-b')
  const late = await connect(t, 'full-c')
  const refused = await late.request('join_room', { roomId })
  t.equal(refused.data.code, 'ROOM_FULL')
  const member = await connect(t, 'full-a')
  t.equal((await member.request('join_room', { roomId })).type, 'room_joined', 'a member\'s second tab still gets in')
})

t.test('host_sync reaches every other connection; viewers cannot sync', async (t) => {
  const { roomId, host, viewers } = await party(t, 'sync-h', 'sync-a', 'sync-b')
  const hostTab2 = await connect(t, 'sync-h')
  await hostTab2.expect('join_room', { roomId }, 'room_joined')
  const before = Date.now()
  const ack = await host.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 12.5, isPlaying: true, playbackRate: 1.5 })
  t.equal(ack.type, 'ack')
  t.same(ack.data, {})
  for (const client of [...viewers, hostTab2]) {
    const sync = await client.nextOfType('sync')
    t.equal(sync.channel, `room-${roomId}`)
    t.match(sync.data, { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 12.5, isPlaying: true, playbackRate: 1.5 })
    t.ok(sync.data.updatedAt >= before && sync.data.updatedAt <= Date.now(), 'server-stamped updatedAt')
  }
  await host.barrier()
  t.equal(host.received('sync').length, 0, 'the sender gets ack, not its own sync')

  const refused = await viewers[0]!.request('host_sync', { roomId, videoUrl: 'https://evil.example/x.mp4', currentTime: 0, isPlaying: false })
  t.equal(refused.data.code, 'NOT_HOST')
  const outsider = await connect(t, 'sync-outsider')
  t.equal((await outsider.request('host_sync', { roomId, videoUrl: 'https://evil.example/x.mp4', currentTime: 0, isPlaying: false })).data.code, 'NOT_IN_ROOM')
  const room = await reads.getRoom(roomId)
  t.equal(room.currentVideo?.videoUrl, 'https://example.com/movie.mp4', 'refused syncs changed nothing')
})

t.test('host_sync validation', async (t) => {
  const { roomId, host } = await party(t, 'val-h')
  const base = { roomId, videoUrl: 'https://example.com/a.mp4', currentTime: 1, isPlaying: true }
  const bad = [
    { ...base, currentTime: -1 },
    { ...base, currentTime: '1' },
    { ...base, videoUrl: '' },
    { ...base, videoUrl: 'x'.repeat(2049) },
    { ...base, isPlaying: 'yes' },
    { ...base, playbackRate: 0.01 },
    { ...base, playbackRate: 17 },
    { roomId, currentTime: 1, isPlaying: true }
  ]
  for (const data of bad) t.equal((await host.request('host_sync', data)).data.code, 'VALIDATION_FAILED', JSON.stringify(data).slice(0, 80))
  host.sendRaw(`{"type":"host_sync","id":"inf","data":{"roomId":"${roomId}","videoUrl":"u","currentTime":1e400,"isPlaying":true}}`)
  t.equal((await host.next((e) => e.replyTo === 'inf')).data.code, 'VALIDATION_FAILED', 'a non-finite currentTime is refused')
  t.equal((await reads.getRoom(roomId)).currentVideo, null)
})

t.test('transfer_host hands control to a participant', async (t) => {
  const { roomId, host, viewers } = await party(t, 'tr-h', 'tr-a', 'tr-b')
  const [a, b] = viewers as [TestClient, TestClient]
  t.equal((await a.request('transfer_host', { roomId, newHostId: 'tr-b' })).data.code, 'NOT_HOST')
  t.equal((await host.request('transfer_host', { roomId, newHostId: 'stranger' })).data.code, 'USER_NOT_IN_ROOM')
  t.equal((await host.request('transfer_host', { roomId, newHostId: 'bad id!' })).data.code, 'VALIDATION_FAILED')
  const reply = await host.request('transfer_host', { roomId, newHostId: 'tr-a' })
  t.equal(reply.type, 'host_changed')
  t.same(reply.data, { roomId, hostId: 'tr-a', previousHostId: 'tr-h', reason: 'transfer' })
  for (const client of [a, b]) t.same((await client.nextOfType('host_changed')).data, reply.data)
  t.equal((await host.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 0, isPlaying: false })).data.code, 'NOT_HOST', 'the old host lost control')
  t.equal((await a.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 0, isPlaying: false })).type, 'ack', 'the new host has it')
  const [row] = await database.handle.db.execute<{ host_id: string }>(`select host_id from rooms where id = '${roomId}'` as never).then((r) => (r as unknown as { rows: Array<{ host_id: string }> }).rows)
  t.equal(row?.host_id, 'tr-a', 'written to the database')
})

t.test('chat reaches everyone, the sender included; outsiders cannot chat', async (t) => {
  const { roomId, host, viewers } = await party(t, 'chat-h', 'chat-a')
  const reply = await viewers[0]!.request('chat', { roomId, message: 'hello 👋' })
  t.equal(reply.type, 'chat')
  t.match(reply.data, { roomId, userId: 'chat-a', message: 'hello 👋' })
  t.match(reply.data.id, /^[0-9a-f-]{36}$/)
  t.ok(!Number.isNaN(Date.parse(reply.data.sentAt)))
  const heard = await host.nextOfType('chat')
  t.same(heard.data, reply.data, 'the same event everyone gets')
  const outsider = await connect(t, 'chat-outsider')
  t.equal((await outsider.request('chat', { roomId, message: 'let me in' })).data.code, 'NOT_IN_ROOM')
  t.equal((await host.request('chat', { roomId, message: '' })).data.code, 'VALIDATION_FAILED')
  t.equal((await host.request('chat', { roomId, message: 'x'.repeat(2001) })).data.code, 'VALIDATION_FAILED')
  t.equal((await host.request('chat', { roomId, message: 'x'.repeat(2000) })).type, 'chat')
  await host.barrier()
  t.notOk(host.received('chat').some((e) => e.data.message === 'let me in'))
})

t.test('leave_room: the user leaves, the others hear it, the longest-present takes over', async (t) => {
  const { roomId, host, viewers } = await party(t, 'lv-h', 'lv-a', 'lv-b')
  const [a, b] = viewers as [TestClient, TestClient]
  const left = await host.request('leave_room', { roomId })
  t.equal(left.type, 'room_left')
  t.same(left.data, { roomId })
  for (const client of [a, b]) {
    t.same((await client.nextOfType('participant_left')).data, { roomId, userId: 'lv-h' })
    t.same((await client.nextOfType('host_changed')).data, { roomId, hostId: 'lv-a', previousHostId: 'lv-h', reason: 'host_left' })
  }
  t.equal((await host.request('leave_room', { roomId })).data.code, 'NOT_IN_ROOM', 'leaving twice is refused')
  t.equal((await host.request('chat', { roomId, message: 'still here?' })).data.code, 'NOT_IN_ROOM')
  await host.barrier()
  t.equal(host.received('participant_left').length, 0, 'the leaver gets room_left only')
  const room = await reads.getRoom(roomId)
  t.same(room.participants, ['lv-a', 'lv-b'])
  t.equal(room.hostId, 'lv-a')
})

t.test('a viewer leaving does not change the host', async (t) => {
  const { roomId, host, viewers } = await party(t, 'lv2-h', 'lv2-a')
  await viewers[0]!.expect('leave_room', { roomId }, 'room_left')
  t.same((await host.nextOfType('participant_left')).data, { roomId, userId: 'lv2-a' })
  await host.barrier()
  t.equal(host.received('host_changed').length, 0)
})

t.test('two tabs: leaving in one keeps the user in the room', async (t) => {
  const { roomId, host } = await party(t, 'tabs-h')
  const tab1 = await connect(t, 'tabs-v')
  const tab2 = await connect(t, 'tabs-v')
  await tab1.expect('join_room', { roomId }, 'room_joined')
  await tab2.expect('join_room', { roomId }, 'room_joined')
  await tab1.expect('leave_room', { roomId }, 'room_left')
  await host.barrier()
  t.equal(host.received('participant_left').length, 0, 'still in through the other tab')
  await host.expect('chat', { roomId, message: 'tab check' }, 'chat')
  t.equal((await tab2.nextOfType('chat')).data.message, 'tab check', 'the other tab still receives')
  await tab1.barrier()
  t.notOk(tab1.received('chat').some((e) => e.data.message === 'tab check'), 'the tab that left does not')
  await tab2.expect('leave_room', { roomId }, 'room_left')
  t.same((await host.nextOfType('participant_left')).data, { roomId, userId: 'tabs-v' })
})

t.test('DELETE /rooms/{id} closes a live room: members get room_closed', async (t) => {
  const { roomId, host, viewers } = await party(t, 'del-h', 'del-a')
  const refused = await app.inject({ method: 'DELETE', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'del-a' } })
  t.equal(refused.statusCode, 403)
  const deleted = await app.inject({ method: 'DELETE', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'del-h' } })
  t.equal(deleted.statusCode, 204)
  for (const client of [host, viewers[0]!]) {
    const closed = await client.nextOfType('room_closed')
    t.same(closed.data, { roomId, reason: 'deleted' })
    t.equal(closed.channel, `room-${roomId}`)
  }
  t.equal((await host.request('chat', { roomId, message: 'hello?' })).data.code, 'ROOM_CLOSED')
  const read = await app.inject({ method: 'GET', url: `/rooms/${roomId}`, headers: { 'x-user-id': 'x' } })
  t.match(read.json(), { isActive: false, participants: [] })
})

t.test('a failed write-through answers SERVICE_UNAVAILABLE and changes nothing', async (t) => {
  const own = await createTestApp(t, { listen: true })
  const host = await TestClient.connect(own.wsUrl, { userId: 'wt-h' }, t)
  const viewer = await TestClient.connect(own.wsUrl, { userId: 'wt-v' }, t)
  const roomId = (await host.expect('create_room', { roomName: 'write-through' }, 'room_created')).data.room.id as string
  await host.expect('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: false }, 'ack')
  await own.database.handle.close()
  const refused = await viewer.request('join_room', { roomId })
  t.equal(refused.data.code, 'SERVICE_UNAVAILABLE')
  const created = await host.request('create_room', { roomName: 'second' })
  t.equal(created.data.code, 'SERVICE_UNAVAILABLE')
  const leave = await host.request('leave_room', { roomId })
  t.equal(leave.data.code, 'SERVICE_UNAVAILABLE')
  const room = await own.reads.getRoom(roomId)
  t.same(room.participants, ['wt-h'], 'memory unchanged')
  t.equal(room.hostId, 'wt-h')
  t.equal((await host.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 2, isPlaying: true })).type, 'ack', 'live sync keeps flowing from memory')
  t.equal((await host.request('chat', { roomId, message: 'not stored, not sent' })).data.code, 'SERVICE_UNAVAILABLE', 'chat is a stream event (1.1): stored before it is sent, or refused')
})

t.test('a room id in upper case names the same room and cannot shadow it', async (t) => {
  const { roomId, host, viewers } = await party(t, 'case-h', 'case-v')
  const upper = roomId.toUpperCase()
  const outsider = await connect(t, 'case-mallory')
  t.equal((await outsider.request('chat', { roomId: upper, message: 'hi' })).data.code, 'NOT_IN_ROOM')
  const joined = await outsider.expect('join_room', { roomId: upper }, 'room_joined')
  t.equal(joined.data.room.id, roomId, 'the canonical id comes back')
  t.same(joined.data.room.participants, ['case-h', 'case-v', 'case-mallory'], 'joined the live room, not a copy')
  t.equal(joined.data.role, 'viewer')
  t.equal((await host.request('host_sync', { roomId, videoUrl: 'https://example.com/movie.mp4', currentTime: 1, isPlaying: false })).type, 'ack', 'the host keeps control')
  t.equal((await viewers[0]!.request('chat', { roomId: upper, message: 'still here' })).type, 'chat', 'members may use either spelling')
  t.equal((await outsider.nextOfType('sync')).channel, `room-${roomId}`)
})
