/**
 * The client's lifecycle and request/reply against a fake socket: states as events, requests queued until the
 * hello, each request settling exactly once (reply, protocol error, timeout, lost connection, closed client).
 */
import t from 'tap'
import { ClientClosedError, ConnectionLostError, RequestError, RequestTimeoutError, WatchPartyClient, WatchPartyError, type ConnectionState } from '@watch-party/client'
import { FakeClock } from '../helpers/fake-clock.js'
import { ROOM_ID, fakeServer, roomShape } from './helpers/fake-socket.js'

function setup (options: { clock?: FakeClock } = {}) {
  const server = fakeServer()
  const clock = options.clock ?? new FakeClock()
  const client = new WatchPartyClient({ url: 'ws://server.test/ws', userId: 'alice', WebSocket: server.WebSocket, timers: clock, now: () => clock.now(), random: () => 0.5, clock: { pings: 1 } })
  const states: ConnectionState[] = []
  client.on('state', ({ state }) => { states.push(state) })
  return { server, clock, client, states }
}

t.test('connect: connecting, then connected once the hello arrives; close: closed', async (t) => {
  const { server, client, states } = setup()
  const named: string[] = []
  for (const name of ['connecting', 'connected', 'reconnecting', 'closed'] as const) client.on(name, () => { named.push(name) })
  t.equal(client.state, 'closed', 'a new client is closed until connect()')
  const connected = client.connect()
  const socket = await server.nextSocket()
  t.equal(new URL(socket.url).searchParams.get('userId'), 'alice', 'development identity goes in ?userId=')
  t.equal(client.state, 'connecting')
  socket.accept({ userId: 'alice' })
  await connected
  t.equal(client.state, 'connected')
  t.equal(client.userId, 'alice')
  t.same(client.features, ['positions', 'catch_up', 'chat_history'])
  client.close()
  t.same(states, ['connecting', 'connected', 'closed'])
  t.same(named, ['connecting', 'connected', 'closed'])
  t.equal(socket.closedByClient?.code, 1000, 'close() closes the socket normally')
})

t.test('a request made while connecting waits for the hello, then resolves with its typed reply', async (t) => {
  const { server, client } = setup()
  void client.connect()
  const socket = await server.nextSocket()
  const reply = client.request('ping', { clientTime: 5 })
  t.equal(socket.sent.length, 0, 'nothing is sent before the hello')
  socket.accept()
  const ours = await socket.nextSent('ping')
  t.same(ours.data, { clientTime: 5 }, 'queued requests go out before the clock round\'s pings')
  socket.reply(ours, { type: 'pong', data: { clientTime: 5, serverTime: 1234.5 } })
  const pong = await reply
  t.equal(pong.type, 'pong')
  t.equal(pong.data.serverTime, 1234.5)
  client.close()
})

t.test('an error reply rejects with a RequestError carrying the protocol code', async (t) => {
  const { server, client } = setup()
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  const joining = client.joinRoom(ROOM_ID)
  const sent = await socket.nextSent('join_room')
  socket.reply(sent, { type: 'error', data: { error: 'Not Found', message: 'no such room', code: 'ROOM_NOT_FOUND' } })
  const err = await joining.catch((e: unknown) => e)
  t.ok(err instanceof RequestError, 'a RequestError')
  t.ok(err instanceof WatchPartyError, 'which is a WatchPartyError')
  t.equal((err as RequestError).code, 'ROOM_NOT_FOUND')
  t.equal((err as RequestError).title, 'Not Found')
  t.equal((err as RequestError).requestType, 'join_room')
  t.equal(client.room(ROOM_ID), undefined, 'a refused join leaves no room behind')
  client.close()
})

t.test('no reply within the timeout: a RequestTimeoutError, and a late reply is ignored', async (t) => {
  const { server, client, clock } = setup()
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  const pending = client.request('chat', { roomId: ROOM_ID, message: 'hi' }, { timeoutMs: 3000 })
  const sent = await socket.nextSent('chat')
  clock.advance(2999)
  let settled = false
  void pending.then(() => { settled = true }, () => { settled = true })
  await Promise.resolve()
  t.notOk(settled, 'still waiting 1 ms before the timeout')
  clock.advance(1)
  const err = await pending.catch((e: unknown) => e)
  t.ok(err instanceof RequestTimeoutError)
  t.equal((err as RequestTimeoutError).code, 'TIMEOUT')
  t.equal((err as RequestTimeoutError).timeoutMs, 3000)
  socket.reply(sent, { type: 'chat', channel: `room-${ROOM_ID}`, data: { roomId: ROOM_ID, id: 'x', userId: 'alice', message: 'hi', sentAt: 'now' } })
  t.equal(client.state, 'connected', 'a late reply changes nothing')
  client.close()
})

t.test('a reply of the wrong type rejects with UNEXPECTED_REPLY', async (t) => {
  const { server, client } = setup()
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  const pending = client.request('leave_room', { roomId: ROOM_ID })
  socket.reply(await socket.nextSent('leave_room'), { type: 'ack', data: {} })
  const err = await pending.catch((e: unknown) => e)
  t.equal((err as WatchPartyError).code, 'UNEXPECTED_REPLY')
  client.close()
})

t.test('the socket closes after a request was sent: ConnectionLostError; chat is sent again with the same id', async (t) => {
  const { server, client, clock } = setup()
  void client.connect()
  const first = await server.nextSocket()
  first.accept()
  await first.nextSent('ping')
  const sync = client.request('host_sync', { roomId: ROOM_ID, videoUrl: 'https://example.com/v.mp4', currentTime: 1, isPlaying: true })
  const chat = client.request('chat', { roomId: ROOM_ID, message: 'still there?' })
  await first.nextSent('host_sync')
  const chatSent = await first.nextSent('chat')
  first.serverClose(1006)
  const err = await sync.catch((e: unknown) => e)
  t.ok(err instanceof ConnectionLostError, 'host_sync may or may not have been applied: the app is told')
  t.equal((err as ConnectionLostError).closeCode, 1006)
  clock.advance(1000)
  const second = await server.nextSocket()
  second.accept()
  const again = await second.nextSent('chat')
  t.equal(again.id, chatSent.id, 'the same request id, so the server answers with the stored line')
  t.same(again.data, chatSent.data)
  second.reply(again, { type: 'chat', channel: `room-${ROOM_ID}`, seq: 3, epoch: 'e1', data: { roomId: ROOM_ID, id: 'c', userId: 'alice', message: 'still there?', sentAt: 'now' } })
  t.equal((await chat).data.message, 'still there?')
  client.close()
})

t.test('close() rejects every waiting request with ClientClosedError, and later requests at once', async (t) => {
  const { server, client } = setup()
  void client.connect().catch(() => {})
  const socket = await server.nextSocket()
  socket.accept()
  const pending = client.request('transfer_host', { roomId: ROOM_ID, newHostId: 'bob' })
  await socket.nextSent('transfer_host')
  client.close()
  t.ok(await pending.catch((e: unknown) => e) instanceof ClientClosedError)
  t.ok(await client.request('ping', {}).catch((e: unknown) => e) instanceof ClientClosedError)
})

t.test('requests resolve with the reply of their own type for every request type', async (t) => {
  const { server, client } = setup()
  void client.connect()
  const socket = await server.nextSocket()
  socket.accept()
  const room = client.createRoom('Friday movie')
  socket.reply(await socket.nextSent('create_room'), { type: 'room_created', channel: `room-${ROOM_ID}`, data: { room: roomShape(), role: 'host', serverTime: 1, seq: 0, epoch: 'e1', chat: [] } })
  t.equal((await room).id, ROOM_ID)
  const answers = {
    host_sync: { type: 'ack', data: {} },
    playback_report: { type: 'ack', data: {} },
    auth: { type: 'ack', data: {} },
    leave_room: { type: 'room_left', data: { roomId: ROOM_ID } }
  } as const
  const sync = client.request('host_sync', { roomId: ROOM_ID, videoUrl: 'https://example.com/v.mp4', currentTime: 0, isPlaying: false })
  socket.reply(await socket.nextSent('host_sync'), answers.host_sync)
  t.equal((await sync).type, 'ack')
  const report = client.request('playback_report', { roomId: ROOM_ID, currentTime: 0, isPlaying: false, at: 1 })
  socket.reply(await socket.nextSent('playback_report'), answers.playback_report)
  t.equal((await report).type, 'ack')
  const leave = client.request('leave_room', { roomId: ROOM_ID })
  socket.reply(await socket.nextSent('leave_room'), answers.leave_room)
  t.equal((await leave).data.roomId, ROOM_ID)
  client.close()
})

t.test('options are checked when the client is made', async (t) => {
  const host = globalThis as { WebSocket?: unknown }
  const saved = Object.getOwnPropertyDescriptor(host, 'WebSocket')
  Reflect.deleteProperty(host, 'WebSocket') // as in Node 20: no global WebSocket
  t.teardown(() => { if (saved !== undefined) Object.defineProperty(host, 'WebSocket', saved) })
  t.throws(() => new WatchPartyClient({ url: 'ws://server.test/ws', userId: 'alice' }), /pass options.WebSocket/, 'no global WebSocket and none given: a TypeError at once')
  const server = fakeServer()
  host.WebSocket = server.WebSocket
  const client = new WatchPartyClient({ url: 'ws://server.test/ws', userId: 'alice' })
  Reflect.deleteProperty(host, 'WebSocket')
  void client.connect().catch(() => {})
  t.match((await server.nextSocket()).url, /^ws:\/\/server\.test\/ws\?userId=alice$/, 'the global WebSocket is the default')
  client.close()
  t.throws(() => new WatchPartyClient({ url: 'ws://server.test/ws', userId: 'alice', token: () => 'x', WebSocket: fakeServer().WebSocket }), /either token or userId/)
})
