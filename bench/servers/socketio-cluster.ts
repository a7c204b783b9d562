/**
 * The cluster bench's peer: the Socket.IO baseline (bench/servers/socketio.ts) run as several processes on one
 * Redis, the way a Node developer scales Socket.IO out: `@socket.io/redis-adapter` carries every room broadcast
 * to the other processes (Redis pub/sub), and the room records live in Redis so that a join on any process
 * finds a room created on another.
 *
 * The same rules as the one-process baseline: create_room, join_room, host_sync (host only), chat; replies are
 * acknowledgements; fan-out is `socket.to(room).emit` (sync, everyone but the host) and `io.to(room).emit`
 * (chat, everyone), across processes through the adapter. Room record: a Redis string (JSON) written at
 * create; members: a Redis set; the latest playback: a Redis string written (not awaited) at each host_sync, so
 * a joiner on any process gets the current video. Nothing is durable beyond Redis (ours writes every stream
 * event to PostgreSQL): this is the lighter design, not an equivalent one.
 *
 * Env: PORT, HOST (127.0.0.1), HEARTBEAT_MS (pingInterval), REDIS_URL, REDIS_PREFIX (keys and adapter channels).
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'

interface RoomRecord { id: string, name: string, hostId: string, createdAt: string }
interface Playback { videoUrl: string, currentTime: number, isPlaying: boolean, playbackRate: number, updatedAt: number }
interface Room extends RoomRecord { channel: string, playback: Playback | null }

type Ack = ((answer: Record<string, unknown>) => void) | undefined
type Data = Record<string, unknown> | undefined

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 25_000)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = process.env.REDIS_PREFIX ?? 'sio-bench:'

const pub = new Redis(redisUrl, { connectionName: 'sio-bench-pub' })
const sub = pub.duplicate({ connectionName: 'sio-bench-sub' })
/** Rooms this process has seen (created here, or read from Redis at a join here). */
const rooms = new Map<string, Room>()

const roomKey = (id: string): string => `${prefix}room:${id}`
const membersKey = (id: string): string => `${prefix}members:${id}`
const playbackKey = (id: string): string => `${prefix}playback:${id}`

async function roomOf (data: Data): Promise<Room | undefined> {
  if (typeof data?.roomId !== 'string') return undefined
  const known = rooms.get(data.roomId)
  if (known !== undefined) return known
  const [record, playback] = await pub.mget(roomKey(data.roomId), playbackKey(data.roomId))
  if (record === null || record === undefined) return undefined
  const room: Room = { ...(JSON.parse(record) as RoomRecord), channel: `room-${data.roomId}`, playback: playback === null || playback === undefined ? null : JSON.parse(playback) as Playback }
  rooms.set(room.id, room)
  return room
}

const roomJson = (room: Room, participants: string[]): Record<string, unknown> => ({
  id: room.id,
  hostId: room.hostId,
  name: room.name,
  participants,
  isActive: true,
  createdAt: room.createdAt,
  currentVideo: room.playback === null ? null : { roomId: room.id, ...room.playback }
})
const error = (code: string, message: string): Record<string, unknown> => ({ error: { error: code, message, code } })

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(pub.status === 'ready' && sub.status === 'ready' ? 200 : 503, { 'content-type': 'application/json' })
    res.end(`{"status":"${pub.status}"}`)
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
  serveClient: false,
  adapter: createAdapter(pub, sub, { key: `${prefix}socket.io` })
})

io.on('connection', (socket) => {
  const userId = String(socket.handshake.query.userId ?? socket.id)
  const joined = new Set<Room>()
  const fail = (ack: Ack) => (err: unknown): void => { ack?.(error('INTERNAL', (err as Error).message)) }

  socket.on('create_room', (data: Data, ack: Ack) => {
    if (typeof data?.roomName !== 'string' || data.roomName.length === 0) return ack?.(error('VALIDATION_FAILED', 'roomName'))
    const id = randomUUID()
    const record: RoomRecord = { id, name: data.roomName, hostId: userId, createdAt: new Date().toISOString() }
    const room: Room = { ...record, channel: `room-${id}`, playback: null }
    pub.multi().set(roomKey(id), JSON.stringify(record)).sadd(membersKey(id), userId).exec().then(() => {
      rooms.set(id, room)
      joined.add(room)
      void socket.join(room.channel)
      ack?.({ room: roomJson(room, [userId]), role: 'host', serverTime: Date.now() })
    }, fail(ack))
  })

  socket.on('join_room', (data: Data, ack: Ack) => {
    roomOf(data).then(async (room) => {
      if (room === undefined) return ack?.(error('ROOM_NOT_FOUND', 'no such room'))
      const [[, added], [, participants]] = await pub.multi().sadd(membersKey(room.id), userId).smembers(membersKey(room.id)).exec() as [[null, number], [null, string[]]]
      if (added === 1) socket.to(room.channel).emit('participant_joined', { roomId: room.id, userId })
      joined.add(room)
      void socket.join(room.channel)
      ack?.({ room: roomJson(room, participants), role: room.hostId === userId ? 'host' : 'viewer', serverTime: Date.now() })
    }).catch(fail(ack))
  })

  socket.on('host_sync', (data: Data, ack: Ack) => {
    const room = typeof data?.roomId === 'string' ? rooms.get(data.roomId) : undefined
    if (room === undefined || !joined.has(room)) return ack?.(error('NOT_IN_ROOM', 'join first'))
    if (room.hostId !== userId) return ack?.(error('NOT_HOST', 'only the host may sync'))
    if (typeof data?.videoUrl !== 'string' || typeof data.currentTime !== 'number' || typeof data.isPlaying !== 'boolean') {
      return ack?.(error('VALIDATION_FAILED', 'host_sync needs videoUrl, currentTime, isPlaying'))
    }
    const playbackRate = typeof data.playbackRate === 'number' ? data.playbackRate : 1
    room.playback = { videoUrl: data.videoUrl, currentTime: data.currentTime, isPlaying: data.isPlaying, playbackRate, updatedAt: Date.now() }
    socket.to(room.channel).emit('sync', { roomId: room.id, ...room.playback })
    pub.set(playbackKey(room.id), JSON.stringify(room.playback)).catch(() => {})
    ack?.({})
  })

  socket.on('chat', (data: Data, ack: Ack) => {
    const room = typeof data?.roomId === 'string' ? rooms.get(data.roomId) : undefined
    if (room === undefined || !joined.has(room)) return ack?.(error('NOT_IN_ROOM', 'join first'))
    if (typeof data?.message !== 'string' || data.message.length === 0 || data.message.length > 2000) return ack?.(error('VALIDATION_FAILED', 'message'))
    io.to(room.channel).emit('chat', { roomId: room.id, id: randomUUID(), userId, message: data.message, sentAt: new Date().toISOString() })
    ack?.({})
  })

  socket.on('disconnect', () => {
    for (const room of joined) pub.srem(membersKey(room.id), userId).catch(() => {})
  })
})

process.on('SIGTERM', () => {
  io.close(() => {
    pub.disconnect()
    sub.disconnect()
    process.exit(0)
  })
  setTimeout(() => process.exit(0), 2000).unref()
})

server.listen(port, host)
