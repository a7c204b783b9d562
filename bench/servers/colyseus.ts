/**
 * Baseline 3, the room framework Node developers reach for: Colyseus (@colyseus/core 0.16 with
 * @colyseus/ws-transport, its `ws` transport). The same rules as the bare and Socket.IO baselines, written
 * the Colyseus way: one room type `watch`, created by the host through the HTTP matchmaker
 * (`POST /matchmake/create/watch`) and joined by id (`POST /matchmake/joinById/<roomId>`), then the room's
 * WebSocket; messages are Colyseus ROOM_DATA frames (msgpack).
 *
 * - create: the creator (join option `userId`) is the host; its join is answered like the others' are, with
 *   `room_joined` carrying the room (the creator's seat is a join too: Colyseus has no create without join).
 * - join: `participant_joined` to everyone else in the room, `room_joined` (room, role) to the joiner.
 * - `host_sync` (host only, validated like the others): `sync` to everyone but the host, `ack` to the host.
 * - `chat` (validated): `chat` to everyone, the sender included (the sender's copy is its reply).
 * No room state (so no state patches; the patch timer is off), rooms of any size (maxClients unlimited),
 * a seat reservation of 60 s (a creator that connects late under load keeps its room), and a room disposes
 * only when its last client has left.
 *
 * Env: PORT, HOST (127.0.0.1), HEARTBEAT_MS (ws-transport's pingInterval; a client that misses 2 pings is dropped).
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { Room, Server, type Client } from '@colyseus/core'
import { WebSocketTransport } from '@colyseus/ws-transport'

const port = Number(process.env.PORT ?? 0)
const host = process.env.HOST ?? '127.0.0.1'
const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 30_000)

interface Playback { videoUrl: string, currentTime: number, isPlaying: boolean, playbackRate: number, updatedAt: number }
type Data = Record<string, unknown> | undefined
interface Member { userId: string }

class WatchRoom extends Room<object, unknown, Member> {
  private name = ''
  private hostId = ''
  private readonly createdAt = new Date().toISOString()
  private participants: string[] = []
  private playback: Playback | null = null

  override onCreate (options: Data): void {
    this.name = typeof options?.roomName === 'string' ? options.roomName : 'room'
    this.hostId = typeof options?.userId === 'string' ? options.userId : ''
    this.maxClients = Number.MAX_SAFE_INTEGER
    this.patchRate = 0
    this.setSeatReservationTime(60)

    this.onMessage('host_sync', (client: Client<Member>, data: Data) => {
      if (client.userData?.userId !== this.hostId) return this.fail(client, 'NOT_HOST', 'only the host may sync')
      if (typeof data?.videoUrl !== 'string' || typeof data.currentTime !== 'number' || typeof data.isPlaying !== 'boolean') {
        return this.fail(client, 'VALIDATION_FAILED', 'host_sync needs videoUrl, currentTime, isPlaying')
      }
      const playbackRate = typeof data.playbackRate === 'number' ? data.playbackRate : 1
      this.playback = { videoUrl: data.videoUrl, currentTime: data.currentTime, isPlaying: data.isPlaying, playbackRate, updatedAt: Date.now() }
      // roomId first: the timing marker in videoUrl must be the first '~' of the frame (see bench/lib/clients.ts).
      this.broadcast('sync', { roomId: this.roomId, ...this.playback }, { except: client })
      client.send('ack', {})
    })

    this.onMessage('chat', (client: Client<Member>, data: Data) => {
      if (typeof data?.message !== 'string' || data.message.length === 0 || data.message.length > 2000) return this.fail(client, 'VALIDATION_FAILED', 'message')
      this.broadcast('chat', { roomId: this.roomId, id: randomUUID(), userId: client.userData?.userId, message: data.message, sentAt: new Date().toISOString() })
    })

    this.onMessage('*', (client: Client<Member>) => { this.fail(client, 'UNKNOWN_EVENT', 'unknown message type') })
  }

  override onJoin (client: Client<Member>, options: Data): void {
    const userId = typeof options?.userId === 'string' ? options.userId : client.sessionId
    client.userData = { userId }
    if (!this.participants.includes(userId)) {
      this.participants.push(userId)
      this.broadcast('participant_joined', { roomId: this.roomId, userId }, { except: client })
    }
    // Queued by Colyseus until the client acknowledges JOIN_ROOM; the bench's join completes on it.
    client.send('room_joined', { room: this.json(), role: userId === this.hostId ? 'host' : 'viewer', serverTime: Date.now() })
  }

  override onLeave (client: Client<Member>): void {
    const userId = client.userData?.userId
    if (userId !== undefined && !this.clients.some((c) => c !== client && (c.userData as Member | undefined)?.userId === userId)) {
      this.participants = this.participants.filter((p) => p !== userId)
    }
  }

  private fail (client: Client, code: string, message: string): void {
    client.send('error', { error: code, message, code })
  }

  private json (): Record<string, unknown> {
    return {
      id: this.roomId,
      hostId: this.hostId,
      name: this.name,
      participants: this.participants,
      isActive: true,
      createdAt: this.createdAt,
      currentVideo: this.playback === null ? null : { roomId: this.roomId, ...this.playback }
    }
  }
}

// Colyseus answers /matchmake/* on this server itself and passes every other request to this handler.
const http = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"status":"ok"}')
    return
  }
  res.writeHead(404)
  res.end()
})

const gameServer = new Server({
  transport: new WebSocketTransport({ server: http, pingInterval: heartbeatMs, pingMaxRetries: 2, maxPayload: 64 * 1024, perMessageDeflate: false }),
  greet: false,
  gracefullyShutdown: false
})
gameServer.define('watch', WatchRoom)

process.on('SIGTERM', () => {
  void gameServer.gracefullyShutdown(false).finally(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})

await gameServer.listen(port, host)
