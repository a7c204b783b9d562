/**
 * Every request type through the client against a real server: its typed reply, its refusals as
 * RequestErrors with the protocol's code, and its timeout when the frame never reaches the server.
 */
import t from 'tap'
import WebSocket from 'ws'
import { RequestError, RequestTimeoutError, WatchPartyClient, type RequestType, type WatchPartyRoom } from '@watch-party/client'
import { createTestApp } from '../helpers/app.js'
import { lossyWebSocket, type Loss } from './helpers/lossy-socket.js'

const VIDEO = 'https://example.com/movie.mp4'

t.test('every request type resolves with its reply; state follows on both sides', async (t) => {
  const app = await createTestApp(t, { listen: true })
  const connect = async (userId: string): Promise<WatchPartyClient> => {
    const client = new WatchPartyClient({ url: app.wsUrl, userId, WebSocket })
    t.teardown(() => { client.close() })
    await client.connect()
    return client
  }
  const alice = await connect('alice')
  const bob = await connect('bob')
  t.equal(alice.state, 'connected')

  const pong = await alice.request('ping', { clientTime: 42 })
  t.equal(pong.data.clientTime, 42, 'ping → pong')

  const hosted = await alice.createRoom('Friday movie')
  t.equal(hosted.hostId, 'alice', 'create_room → room_created: a room object, alice hosting')
  t.ok(hosted.isHost)
  t.same(hosted.participants, ['alice'])

  const joinedByAlice = new Promise((resolve) => hosted.once('participant_joined', resolve))
  const viewed = await bob.joinRoom(hosted.id)
  t.same(viewed.participants, ['alice', 'bob'], 'join_room → room_joined with the snapshot')
  t.match(await joinedByAlice, { userId: 'bob', replayed: false })
  t.same(hosted.participants, ['alice', 'bob'], 'the host\'s room follows participant_joined')
  t.equal(await bob.joinRoom(hosted.id), viewed, 'joining again gives the same room')

  const synced = new Promise((resolve) => viewed.once('sync', resolve))
  await hosted.sync({ videoUrl: VIDEO, currentTime: 30, isPlaying: true, playbackRate: 1 })
  await synced
  t.equal(viewed.playback?.videoUrl, VIDEO, 'host_sync → ack; the viewer gets sync')
  const expected = viewed.expectedPosition()!
  // Within the clocks' estimation error (milliseconds) of 30 s plus the time since the sync.
  t.ok(expected > 29.95 && expected < 35, `the viewer's expected position extrapolates the host's (${expected.toFixed(3)} s)`)
  t.equal(hosted.playback?.currentTime, 30, 'the host\'s room holds its own sync after the ack')

  const status = new Promise<{ viewers: ReadonlyArray<{ userId: string, drift: number | null }> }>((resolve) => hosted.once('viewer_status', resolve))
  await viewed.report({ currentTime: 30.2, isPlaying: true })
  t.pass('playback_report → ack')
  const rows = (await status).viewers
  t.same(rows.map((r) => r.userId), ['bob'], 'the host gets viewer_status with the viewer\'s row')
  t.type(rows[0]!.drift, 'number')
  t.same(hosted.viewers.map((r) => r.userId), ['bob'], 'and its room keeps it')

  const heard = new Promise<{ message: string }>((resolve) => hosted.once('chat', resolve))
  const line = await viewed.sendChat('hello from bob')
  t.equal(line.message, 'hello from bob', 'chat → chat, the line as stored')
  t.equal((await heard).message, 'hello from bob')
  t.same(viewed.chat.map((l) => l.message), ['hello from bob'], 'the sender\'s room holds its own line once')
  t.same(hosted.chat.map((l) => l.message), ['hello from bob'])

  const handedOver = new Promise((resolve) => viewed.once('host_changed', resolve))
  await hosted.transferHost('bob')
  t.match(await handedOver, { hostId: 'bob', previousHostId: 'alice', reason: 'transfer' }, 'transfer_host → host_changed')
  t.equal(hosted.hostId, 'bob', 'the former host\'s room follows its own reply')
  t.ok(viewed.isHost)

  const left = new Promise((resolve) => viewed.once('participant_left', resolve))
  await hosted.leave()
  t.match(await left, { userId: 'alice' }, 'leave_room → room_left; the others get participant_left')
  t.equal(hosted.joined, false)
  t.same(alice.joinedRooms, [])

  const auth = await alice.request('auth', { token: 'x.y.z' }).catch((e: unknown) => e)
  t.ok(auth instanceof RequestError, 'auth in development mode is refused with the protocol code')
  t.equal((auth as RequestError).code, 'VALIDATION_FAILED')
})

t.test('refusals reject with the protocol code', async (t) => {
  const app = await createTestApp(t, { listen: true })
  const alice = new WatchPartyClient({ url: app.wsUrl, userId: 'alice', WebSocket })
  const bob = new WatchPartyClient({ url: app.wsUrl, userId: 'bob', WebSocket })
  t.teardown(() => { alice.close(); bob.close() })
  await Promise.all([alice.connect(), bob.connect()])
  const codeOf = async (p: Promise<unknown>): Promise<string> => ((await p.then(() => undefined, (e: unknown) => e)) as RequestError | undefined)?.code ?? 'resolved'
  t.equal(await codeOf(alice.joinRoom('not-a-uuid')), 'INVALID_ROOM_ID')
  t.equal(await codeOf(alice.joinRoom('3f0c2a7e-9b1d-4c5e-8f6a-1b2c3d4e5f60')), 'ROOM_NOT_FOUND')
  t.equal(await codeOf(alice.createRoom('')), 'VALIDATION_FAILED')
  const room = await alice.createRoom('rules')
  const viewed = await bob.joinRoom(room.id)
  t.equal(await codeOf(viewed.sync({ videoUrl: VIDEO, currentTime: 0, isPlaying: false })), 'NOT_HOST')
  t.equal(await codeOf(room.transferHost('nobody')), 'USER_NOT_IN_ROOM')
  t.equal(await codeOf(room.sync({ videoUrl: 'javascript:alert(1)', currentTime: 0, isPlaying: false })), 'VALIDATION_FAILED')
  await viewed.leave()
  t.equal(await codeOf(bob.request('chat', { roomId: room.id, message: 'still here?' })), 'NOT_IN_ROOM')
  t.equal(alice.state, 'connected', 'no refusal closes the connection')
})

t.test('each request type times out when its frame never reaches the server', async (t) => {
  const app = await createTestApp(t, { listen: true })
  const host = new WatchPartyClient({ url: app.wsUrl, userId: 'host', WebSocket })
  t.teardown(() => { host.close() })
  await host.connect()
  const room = await host.createRoom('timeouts')
  const loss: Loss = { dropped: [] }
  const client = new WatchPartyClient({ url: app.wsUrl, userId: 'viewer', WebSocket: lossyWebSocket(loss), requestTimeoutMs: 300, clock: { intervalMs: 3_600_000 } })
  t.teardown(() => { client.close() })
  await client.connect()
  const viewed: WatchPartyRoom = await client.joinRoom(room.id)
  const requests: { [K in RequestType]: () => Promise<unknown> } = {
    create_room: async () => await client.createRoom('never'),
    join_room: async () => await client.request('join_room', { roomId: room.id }),
    leave_room: async () => await viewed.leave(),
    host_sync: async () => await viewed.sync({ videoUrl: VIDEO, currentTime: 0, isPlaying: false }),
    transfer_host: async () => await viewed.transferHost('host'),
    chat: async () => await viewed.sendChat('lost'),
    ping: async () => await client.request('ping', {}),
    auth: async () => await client.request('auth', { token: 'x.y.z' }),
    playback_report: async () => await viewed.report({ currentTime: 1, isPlaying: true })
  }
  for (const [type, send] of Object.entries(requests)) {
    loss.dropOutgoing = (frame) => frame.type === type
    const err = await send().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof RequestTimeoutError, `${type}: RequestTimeoutError`)
    t.equal((err as RequestTimeoutError).requestType, type)
  }
  loss.dropOutgoing = undefined
  t.equal(loss.dropped.length, Object.keys(requests).length)
  t.equal((await client.request('ping', { clientTime: 1 })).type, 'pong', 'the connection still works')
})
