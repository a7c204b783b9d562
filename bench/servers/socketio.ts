/**
 * Baseline 2, what a Node developer would otherwise pick: Socket.IO 4 with its in-memory rooms adapter.
 * The same rules as the bare baseline (create_room, join_room, host_sync, chat, in-memory permission checks);
 * replies are Socket.IO acknowledgements; fan-out is `socket.to(room).emit` (sync, everyone but the host)
 * and `io.to(room).emit` (chat, everyone). WebSocket transport only, no compression, like the other two.
 *
 * Env: PORT, HOST (127.0.0.1), HEARTBEAT_MS (Socket.IO's pingInterval).
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { Server } from 'socket.io'

interface Room {
  id: string
  name: string
  hostId: string
  createdAt: string
  channel: string
  participants: string[]
  playback: { videoUrl: string, currentTime: number, isPlaying: boolean, playbackRate: number, updatedAt: number } | null
}

type Ack = ((answer: Record<string, unknown>) => void) | undefined
type Data = Record<string, unknown> | undefined

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 25_000)
const rooms = new Map<string, Room>()

const roomJson = (room: Room): Record<string, unknown> => ({
  id: room.id,
  hostId: room.hostId,
  name: room.name,
  participants: room.participants,
  isActive: true,
  createdAt: room.createdAt,
  currentVideo: room.playback === null ? null : { roomId: room.id, ...room.playback }
})
const error = (code: string, message: string): Record<string, unknown> => ({ error: { error: code, message, code } })

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"status":"ok"}')
    return
  }
  res.writeHead(404)
  res.end()
})
const io = new Server(server, {
  transports: ['websocket'],
  pingInterval: heartbeatMs,
  pingTimeout: 20_000,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
  serveClient: false
})

io.on('connection', (socket) => {
  const userId = String(socket.handshake.query.userId ?? socket.id)
  const joined = new Set<Room>()
  const roomOf = (data: Data): Room | undefined => typeof data?.roomId === 'string' ? rooms.get(data.roomId) : undefined

  socket.on('create_room', (data: Data, ack: Ack) => {
    if (typeof data?.roomName !== 'string' || data.roomName.length === 0) return ack?.(error('VALIDATION_FAILED', 'roomName'))
    const id = randomUUID()
    const room: Room = { id, name: data.roomName, hostId: userId, createdAt: new Date().toISOString(), channel: `room-${id}`, participants: [userId], playback: null }
    rooms.set(id, room)
    joined.add(room)
    void socket.join(room.channel)
    ack?.({ room: roomJson(room), role: 'host', serverTime: Date.now() })
  })

  socket.on('join_room', (data: Data, ack: Ack) => {
    const room = roomOf(data)
    if (room === undefined) return ack?.(error('ROOM_NOT_FOUND', 'no such room'))
    if (!room.participants.includes(userId)) {
      room.participants.push(userId)
      socket.to(room.channel).emit('participant_joined', { roomId: room.id, userId })
    }
    joined.add(room)
    void socket.join(room.channel)
    ack?.({ room: roomJson(room), role: room.hostId === userId ? 'host' : 'viewer', serverTime: Date.now() })
  })

  socket.on('host_sync', (data: Data, ack: Ack) => {
    const room = roomOf(data)
    if (room === undefined || !joined.has(room)) return ack?.(error('NOT_IN_ROOM', 'join first'))
    if (room.hostId !== userId) return ack?.(error('NOT_HOST', 'only the host may sync'))
    if (typeof data?.videoUrl !== 'string' || typeof data.currentTime !== 'number' || typeof data.isPlaying !== 'boolean') {
      return ack?.(error('VALIDATION_FAILED', 'host_sync needs videoUrl, currentTime, isPlaying'))
    }
    const playbackRate = typeof data.playbackRate === 'number' ? data.playbackRate : 1
    room.playback = { videoUrl: data.videoUrl, currentTime: data.currentTime, isPlaying: data.isPlaying, playbackRate, updatedAt: Date.now() }
    socket.to(room.channel).emit('sync', { roomId: room.id, ...room.playback })
    ack?.({})
  })

  socket.on('chat', (data: Data, ack: Ack) => {
    const room = roomOf(data)
    if (room === undefined || !joined.has(room)) return ack?.(error('NOT_IN_ROOM', 'join first'))
    if (typeof data?.message !== 'string' || data.message.length === 0 || data.message.length > 2000) return ack?.(error('VALIDATION_FAILED', 'message'))
    io.to(room.channel).emit('chat', { roomId: room.id, id: randomUUID(), userId, message: data.message, sentAt: new Date().toISOString() })
    ack?.({})
  })

  socket.on('disconnect', () => {
    for (const room of joined) room.participants = room.participants.filter((p) => p !== userId)
  })
})

process.on('SIGTERM', () => {
  io.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})

server.listen(port, host)
