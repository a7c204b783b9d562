/**
 * The bench's Colyseus client (bench/servers/colyseus.ts; @colyseus/core 0.16), spoken frame by frame:
 *
 * 1. Matchmaking over HTTP: `POST /matchmake/create/watch` (create_room) or `POST /matchmake/joinById/<roomId>`
 *    (join_room) with the join options as JSON (`{ userId, roomName? }`); the answer is a seat reservation
 *    `{ room: { roomId, processId, ... }, sessionId }` or `{ code, error }`.
 * 2. The room's WebSocket, `/<processId>/<roomId>?sessionId=<sessionId>`, over LiteSocket.
 * 3. The server's JOIN_ROOM frame `[10, len, reconnectionToken, len, serializerId, handshake?]`, which the
 *    client acknowledges with the single byte `[10]`; until then Colyseus queues the room's messages to it.
 * 4. ROOM_DATA frames both ways: `[13, msgpack str type, msgpack payload]` (binary WebSocket frames). The room
 *    answers a join with `room_joined`, which settles the join; an ERROR frame `[11, code, message]` fails it.
 *
 * A Colyseus connection is one seat in one room, so `connectClient` opens nothing: the socket is opened by
 * create_room / join_room (a join here is matchmaking + WebSocket + handshake, what a Colyseus join is).
 * Timed frames are found by the same byte search as for the other servers: the marker is ASCII inside a
 * msgpack string, and nothing before it in a sync or chat frame can hold a '~'.
 */
import { Agent, request as httpRequest } from 'node:http'
import { Packr } from '@colyseus/msgpackr'
import { findMark, lastMarkKind, type BenchClient } from './clients.js'
import { LiteSocket } from './ws-lite.js'

const JOIN_ROOM = 10
const ERROR = 11
const ROOM_DATA = 13
const JOIN_ACK = Buffer.from([JOIN_ROOM])
const ROOM_JOINED = Buffer.from('room_joined')

const packr = new Packr({ useRecords: false })
// Idle pooled sockets are dropped after 2 s, before the server's keep-alive timeout (5 s) closes them under a
// request that reuses one (which shows as ECONNRESET).
const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 2000 })

interface Reservation { room: { roomId: string, processId: string }, sessionId: string }

/**
 * LiteSocket sends only text publicly; Colyseus needs binary frames (a text frame must be valid UTF-8, which
 * msgpack is not). Reaches its private frame writer until it has a public sendBinary.
 */
function sendBinary (socket: LiteSocket, payload: Buffer): void {
  (socket as unknown as { sendFrame: (opcode: number, payload: Buffer) => void }).sendFrame(0x2, payload)
}

async function matchmake (port: number, path: string, body: Record<string, unknown>, timeoutMs: number): Promise<Reservation> {
  try {
    return await matchmakeOnce(port, path, body, timeoutMs)
  } catch (err) {
    // A pooled socket the server closed as the request went out: once more, on a fresh connection.
    if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' && (err as NodeJS.ErrnoException).code !== 'EPIPE') throw err
    return await matchmakeOnce(port, path, body, timeoutMs)
  }
}

async function matchmakeOnce (port: number, path: string, body: Record<string, unknown>, timeoutMs: number): Promise<Reservation> {
  const payload = Buffer.from(JSON.stringify(body))
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent,
      timeout: timeoutMs,
      headers: { 'content-type': 'application/json', 'content-length': payload.length }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`matchmaking ${path} timed out after ${timeoutMs} ms`)) })
    req.on('error', reject)
    req.end(payload)
  })
  const answer = JSON.parse(text) as Partial<Reservation> & { code?: number, error?: string }
  if (answer.error !== undefined || answer.room === undefined || answer.sessionId === undefined) {
    throw new Error(`matchmaking ${path} failed: ${answer.code ?? ''} ${answer.error ?? text}`)
  }
  return answer as Reservation
}

/** Reads the message type (a msgpack string right after the protocol byte) and compares it with `name`. */
function typeIs (payload: Buffer, name: Buffer): boolean {
  const prefix = payload[1]!
  if (prefix < 0xa0 || prefix > 0xbf) return false
  const length = prefix & 0x1f
  return length === name.length && payload.compare(name, 0, length, 2, 2 + length) === 0
}

export class ColyseusClient implements BenchClient {
  onMarked: ((kind: number, sentUs: number) => void) | undefined
  onOther: (() => void) | undefined
  private socket: LiteSocket | undefined
  private closedBeforeJoin = false
  private joined: { resolve: (data: Record<string, unknown>) => void, reject: (err: Error) => void } | undefined

  constructor (readonly userId: string, private readonly port: number) {}

  get closed (): boolean {
    return this.socket?.closed ?? this.closedBeforeJoin
  }

  close (): void {
    this.closedBeforeJoin = true
    this.socket?.close()
  }

  async request (type: string, data: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (type !== 'create_room' && type !== 'join_room') throw new Error(`${this.userId}: Colyseus has no reply to ${type}; use fire()`)
    if (this.socket !== undefined) throw new Error(`${this.userId}: already in a room (a Colyseus connection is one seat)`)
    const deadline = Date.now() + timeoutMs
    const reservation = type === 'create_room'
      ? await matchmake(this.port, '/matchmake/create/watch', { userId: this.userId, roomName: data.roomName }, timeoutMs)
      : await matchmake(this.port, `/matchmake/joinById/${encodeURIComponent(String(data.roomId))}`, { userId: this.userId }, timeoutMs)
    const { roomId, processId } = reservation.room
    const socket = await LiteSocket.connect({
      host: '127.0.0.1',
      port: this.port,
      path: `/${processId}/${roomId}?sessionId=${encodeURIComponent(reservation.sessionId)}`,
      timeoutMs: Math.max(1000, deadline - Date.now())
    })
    this.socket = socket
    if (this.closedBeforeJoin) socket.close()
    const joined = new Promise<Record<string, unknown>>((resolve, reject) => { this.joined = { resolve, reject } })
    socket.onClose = () => { this.settle(new Error(`${this.userId}: connection closed before the join completed`)) }
    socket.onMessage = (payload) => { this.frame(payload) }
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        joined,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`${this.userId}: no room_joined within ${timeoutMs} ms`)) }, Math.max(1, deadline - Date.now()))
        })
      ])
    } catch (err) {
      this.joined = undefined
      socket.close()
      throw err
    } finally {
      clearTimeout(timer)
    }
    return { room: { id: roomId } }
  }

  fire (type: string, data: Record<string, unknown>): void {
    const socket = this.socket
    if (socket === undefined || socket.closed) return
    // Copied at once: msgpackr may reuse its buffer on the next pack.
    const head = Buffer.from(packr.pack(type))
    const frame = Buffer.concat([Buffer.from([ROOM_DATA]), head, packr.pack(data)])
    sendBinary(socket, frame)
  }

  private frame (payload: Buffer): void {
    const sent = findMark(payload)
    if (sent >= 0) {
      this.onMarked?.(lastMarkKind(), sent)
      return
    }
    this.onOther?.()
    if (this.joined === undefined) return
    const code = payload[0]
    if (code === JOIN_ROOM) {
      if (this.socket !== undefined) sendBinary(this.socket, JOIN_ACK)
    } else if (code === ROOM_DATA && typeIs(payload, ROOM_JOINED)) {
      this.settle(undefined)
    } else if (code === ERROR) {
      this.settle(new Error(`${this.userId}: Colyseus error frame: ${payload.subarray(1).toString('latin1')}`))
    }
  }

  private settle (error: Error | undefined): void {
    const joined = this.joined
    if (joined === undefined) return
    this.joined = undefined
    if (error === undefined) joined.resolve({})
    else joined.reject(error)
  }
}
