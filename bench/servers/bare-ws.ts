/**
 * Baseline 1, the practical ceiling: a bare `ws` server on node:http, no framework, no validation library,
 * no database. It speaks the subset of shared/protocol.md that the bench drives (create_room, join_room,
 * host_sync, chat, ping) with the same permission checks in memory, and fans out by serializing each event
 * once and writing the same Buffer to every member. It also serves `POST /rooms` and `GET /rooms/{id}` from
 * memory, as the ceiling for the REST numbers.
 *
 * Env: PORT, HOST (127.0.0.1), HEARTBEAT_MS.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

interface Conn {
  id: string
  userId: string
  socket: WebSocket
  alive: boolean
  rooms: Set<Room>
}

interface Room {
  id: string
  name: string
  hostId: string
  createdAt: string
  channel: string
  participants: string[]
  members: Set<Conn>
  playback: { videoUrl: string, currentTime: number, isPlaying: boolean, playbackRate: number, updatedAt: number } | null
}

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 30_000)
const rooms = new Map<string, Room>()

function roomJson (room: Room): Record<string, unknown> {
  return {
    id: room.id,
    hostId: room.hostId,
    name: room.name,
    participants: room.participants,
    isActive: true,
    createdAt: room.createdAt,
    currentVideo: room.playback === null ? null : { roomId: room.id, ...room.playback }
  }
}

function newRoom (hostId: string, name: string): Room {
  const id = randomUUID()
  const room: Room = { id, name, hostId, createdAt: new Date().toISOString(), channel: `room-${id}`, participants: [], members: new Set(), playback: null }
  rooms.set(id, room)
  return room
}

function broadcast (room: Room, frame: Buffer, except: Conn | undefined): void {
  for (const member of room.members) if (member !== except) member.socket.send(frame, { binary: false })
}

function reply (conn: Conn, id: unknown, type: string, data: Record<string, unknown>, channel?: string): void {
  conn.socket.send(JSON.stringify({ type, ...(typeof id === 'string' ? { replyTo: id } : {}), ...(channel === undefined ? {} : { channel }), data }))
}

function fail (conn: Conn, id: unknown, code: string, message: string): void {
  reply(conn, id, 'error', { error: code, message, code })
}

function handle (conn: Conn, raw: Buffer): void {
  let request: { type?: unknown, id?: unknown, data?: Record<string, unknown> }
  try {
    request = JSON.parse(raw.toString('utf8')) as typeof request
  } catch {
    fail(conn, undefined, 'INVALID_MESSAGE', 'the frame is not JSON')
    return
  }
  const data = request.data ?? {}
  const id = request.id
  const room = typeof data.roomId === 'string' ? rooms.get(data.roomId) : undefined
  switch (request.type) {
    case 'create_room': {
      if (typeof data.roomName !== 'string' || data.roomName.length === 0) return fail(conn, id, 'VALIDATION_FAILED', 'roomName')
      const created = newRoom(conn.userId, data.roomName)
      created.participants.push(conn.userId)
      created.members.add(conn)
      conn.rooms.add(created)
      return reply(conn, id, 'room_created', { room: roomJson(created), role: 'host', serverTime: Date.now() }, created.channel)
    }
    case 'join_room': {
      if (room === undefined) return fail(conn, id, 'ROOM_NOT_FOUND', 'no such room')
      if (!room.participants.includes(conn.userId)) {
        room.participants.push(conn.userId)
        broadcast(room, Buffer.from(JSON.stringify({ type: 'participant_joined', channel: room.channel, data: { roomId: room.id, userId: conn.userId } })), conn)
      }
      room.members.add(conn)
      conn.rooms.add(room)
      return reply(conn, id, 'room_joined', { room: roomJson(room), role: room.hostId === conn.userId ? 'host' : 'viewer', serverTime: Date.now() }, room.channel)
    }
    case 'host_sync': {
      if (room === undefined || !room.members.has(conn)) return fail(conn, id, 'NOT_IN_ROOM', 'join first')
      if (room.hostId !== conn.userId) return fail(conn, id, 'NOT_HOST', 'only the host may sync')
      if (typeof data.videoUrl !== 'string' || typeof data.currentTime !== 'number' || typeof data.isPlaying !== 'boolean') {
        return fail(conn, id, 'VALIDATION_FAILED', 'host_sync needs videoUrl, currentTime, isPlaying')
      }
      const playbackRate = typeof data.playbackRate === 'number' ? data.playbackRate : 1
      room.playback = { videoUrl: data.videoUrl, currentTime: data.currentTime, isPlaying: data.isPlaying, playbackRate, updatedAt: Date.now() }
      broadcast(room, Buffer.from(JSON.stringify({ type: 'sync', channel: room.channel, data: { roomId: room.id, ...room.playback } })), conn)
      return reply(conn, id, 'ack', {}, room.channel)
    }
    case 'chat': {
      if (room === undefined || !room.members.has(conn)) return fail(conn, id, 'NOT_IN_ROOM', 'join first')
      if (typeof data.message !== 'string' || data.message.length === 0 || data.message.length > 2000) return fail(conn, id, 'VALIDATION_FAILED', 'message')
      const event = { roomId: room.id, id: randomUUID(), userId: conn.userId, message: data.message, sentAt: new Date().toISOString() }
      broadcast(room, Buffer.from(JSON.stringify({ type: 'chat', channel: room.channel, data: event })), conn)
      return reply(conn, id, 'chat', event, room.channel)
    }
    case 'ping':
      return reply(conn, id, 'pong', { clientTime: data.clientTime ?? null, serverTime: Date.now() })
    default:
      return fail(conn, id, 'UNKNOWN_EVENT', 'unknown request type')
  }
}

function rest (req: IncomingMessage, res: ServerResponse): void {
  const send = (status: number, body: unknown): void => {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
  const url = req.url ?? '/'
  if (req.method === 'GET' && url === '/healthz') return send(200, { status: 'ok' })
  const userId = req.headers['x-user-id']
  if (typeof userId !== 'string') return send(401, { error: 'Unauthorized', message: 'x-user-id', code: 'UNAUTHORIZED' })
  if (req.method === 'POST' && url === '/rooms') {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let body: { name?: unknown }
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name?: unknown }
      } catch {
        return send(400, { error: 'Bad Request', message: 'not JSON', code: 'VALIDATION_FAILED' })
      }
      if (typeof body.name !== 'string' || body.name.length === 0) return send(400, { error: 'Bad Request', message: 'name', code: 'VALIDATION_FAILED' })
      send(201, roomJson(newRoom(userId, body.name)))
    })
    return
  }
  const match = /^\/rooms\/([0-9a-f-]{36})$/.exec(url)
  if (req.method === 'GET' && match !== null) {
    const room = rooms.get(match[1]!)
    return room === undefined ? send(404, { error: 'Not Found', message: 'no such room', code: 'ROOM_NOT_FOUND' }) : send(200, roomJson(room))
  }
  send(404, { error: 'Not Found', message: 'no route', code: 'NOT_FOUND' })
}

const server = createServer(rest)
const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false, clientTracking: false })
const conns = new Set<Conn>()

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const userId = url.searchParams.get('userId')
  if (url.pathname !== '/ws' || userId === null) {
    socket.destroy()
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const conn: Conn = { id: randomUUID(), userId, socket: ws, alive: true, rooms: new Set() }
    conns.add(conn)
    ws.on('message', (data, isBinary) => {
      if (isBinary) return
      handle(conn, data as Buffer)
    })
    ws.on('pong', () => { conn.alive = true })
    ws.on('error', () => {})
    ws.on('close', () => {
      conns.delete(conn)
      for (const room of conn.rooms) {
        room.members.delete(conn)
        if (![...room.members].some((m) => m.userId === conn.userId)) room.participants = room.participants.filter((p) => p !== conn.userId)
      }
    })
    ws.send(JSON.stringify({ type: 'connected', data: { userId, connectionId: conn.id, serverTime: Date.now(), protocolVersion: 1, heartbeatMs } }))
  })
})

const heartbeat = setInterval(() => {
  for (const conn of conns) {
    if (!conn.alive) {
      conn.socket.terminate()
      continue
    }
    conn.alive = false
    conn.socket.ping()
  }
}, heartbeatMs)

process.on('SIGTERM', () => {
  clearInterval(heartbeat)
  for (const conn of conns) conn.socket.terminate()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})

server.listen(port, host)
