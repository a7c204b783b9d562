import net from 'node:net'
import { eq } from 'drizzle-orm'
import t, { type Test } from 'tap'
import { roomParticipants, rooms } from '../../src/db/schema.js'
import { openServerDatabase, serverDatabase, startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient } from '../helpers/ws-client.js'

const SHUTDOWN_TIMEOUT_MS = 5000
const env = { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), PLAYBACK_FLUSH_MS: '1000', DISCONNECT_GRACE_MS: '30000' }

/**
 * A WebSocket client that reads everything the server sends but never answers, not even a close frame
 * (a frozen tab, a client behind a dead NAT). Resolves once the upgrade is done and the hello arrived.
 */
async function silentClient (t: Test, port: number, userId: string): Promise<{ closeCode: Promise<number>, gone: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.write(`GET /ws?userId=${userId} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let buffer = Buffer.alloc(0)
  let upgraded = false
  let resolveHello!: () => void
  let resolveClose!: (code: number) => void
  const hello = new Promise<void>((resolve) => { resolveHello = resolve })
  const closeCode = new Promise<number>((resolve) => { resolveClose = resolve })
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk])
    if (!upgraded) {
      const end = buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      if (!buffer.subarray(0, 12).toString().includes('101')) throw new Error(`upgrade refused: ${buffer.toString()}`)
      upgraded = true
      buffer = buffer.subarray(end + 4)
    }
    // Unmasked server frames: opcode, length (7 bits, or 16/64-bit extended), payload.
    while (buffer.length >= 2) {
      const opcode = buffer[0]! & 0x0f
      let length = buffer[1]! & 0x7f
      let offset = 2
      if (length === 126) {
        if (buffer.length < 4) return
        length = buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (buffer.length < 10) return
        length = Number(buffer.readBigUInt64BE(2))
        offset = 10
      }
      if (buffer.length < offset + length) return
      const payload = buffer.subarray(offset, offset + length)
      buffer = buffer.subarray(offset + length)
      if (opcode === 0x1) resolveHello()
      if (opcode === 0x8) resolveClose(payload.readUInt16BE(0))
    }
  })
  const gone = new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) })
  await hello
  return { closeCode, gone }
}

async function connectedClients (t: Test, server: ServerProcess): Promise<{ alice: TestClient, bob: TestClient }> {
  const alice = await TestClient.connect(server.wsUrl, { userId: 'alice' }, t)
  const bob = await TestClient.connect(server.wsUrl, { userId: 'bob' }, t)
  return { alice, bob }
}

// Several server processes, each opening the database (the embedded one takes seconds, more on a busy machine).
t.setTimeout(240_000)

t.test('SIGTERM, then SIGINT: every client gets 1012, the process exits 0 in time, the last playback state is written', async (t) => {
  const database = await serverDatabase(t)
  const first = await startServer(t, { database, env })
  const { alice, bob } = await connectedClients(t, first)
  const created = await alice.expect('create_room', { roomName: 'Deploy night' }, 'room_created')
  const roomId = created.data.room.id as string
  await bob.expect('join_room', { roomId }, 'room_joined')
  const silent = await silentClient(t, first.port, 'frozen-tab')

  await alice.expect('host_sync', { roomId, videoUrl: 'https://example.com/before-sigterm.mp4', currentTime: 77, isPlaying: true }, 'ack')
  const stamped = (await bob.nextOfType('sync')).data.updatedAt as number
  const sigtermAt = Date.now()
  first.kill('SIGTERM')

  t.same(await alice.closed, { code: 1012, reason: 'server restarting; reconnect and rejoin' })
  t.equal((await bob.closed).code, 1012)
  t.equal(await silent.closeCode, 1012, 'a client that never answers gets the close frame too')
  const exit = await first.exited
  t.same([exit.code, exit.signal], [0, null], 'exit 0 after SIGTERM', { log: first.describe() })
  t.ok(exit.at - sigtermAt < SHUTDOWN_TIMEOUT_MS, `exited ${exit.at - sigtermAt} ms after SIGTERM (timeout ${SHUTDOWN_TIMEOUT_MS} ms), not held by the silent client`)
  await silent.gone

  // The state synced right before SIGTERM is what the next process serves.
  const second = await startServer(t, { database, env })
  const back = await second.http('GET', `/rooms/${roomId}`, { userId: 'bob' })
  t.match(back.body, { hostId: 'alice', participants: ['alice', 'bob'], isActive: true })
  const video = back.body.currentVideo
  t.match(video, { videoUrl: 'https://example.com/before-sigterm.mp4', isPlaying: true, playbackRate: 1 })
  t.ok(Math.abs(video.currentTime - (77 + (video.updatedAt - stamped) / 1000)) < 0.001, 'extrapolated from the position and time synced before SIGTERM')

  // Clients do what a 1012 asks: reconnect and rejoin; roles are kept.
  const again = await connectedClients(t, second)
  t.equal((await again.alice.expect('join_room', { roomId }, 'room_joined')).data.role, 'host')
  t.equal((await again.bob.expect('join_room', { roomId }, 'room_joined')).data.role, 'viewer')
  await again.alice.expect('host_sync', { roomId, videoUrl: 'https://example.com/before-sigint.mp4', currentTime: 12.5, isPlaying: false }, 'ack')
  const pausedAt = (await again.bob.nextOfType('sync')).data.updatedAt as number
  const sigintAt = Date.now()
  second.kill('SIGINT')
  t.equal((await again.alice.closed).code, 1012)
  t.equal((await again.bob.closed).code, 1012)
  const exit2 = await second.exited
  t.same([exit2.code, exit2.signal], [0, null], 'exit 0 after SIGINT', { log: second.describe() })
  t.ok(exit2.at - sigintAt < SHUTDOWN_TIMEOUT_MS, `exited ${exit2.at - sigintAt} ms after SIGINT`)

  const stored = await openServerDatabase(t, database)
  const [row] = await stored.db.select({ hostId: rooms.hostId, currentVideo: rooms.currentVideo }).from(rooms).where(eq(rooms.id, roomId))
  t.same(row, {
    hostId: 'alice',
    currentVideo: { videoUrl: 'https://example.com/before-sigint.mp4', currentTime: 12.5, isPlaying: false, playbackRate: 1, updatedAt: pausedAt }
  }, 'the database holds exactly the state synced right before SIGINT')
  const members = await stored.db.select({ userId: roomParticipants.userId }).from(roomParticipants).where(eq(roomParticipants.roomId, roomId))
  t.same(members.map((m) => m.userId).sort(), ['alice', 'bob'], 'a shutdown is not a leave: participants stay for the next process')
})
