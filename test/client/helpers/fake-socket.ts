/**
 * A WebSocket the test plays the server for: the client under test gets a class (`server.WebSocket`) whose
 * instances record what the client sends and let the test deliver frames and closes, synchronously, in order.
 */
import type { SocketLike, WebSocketClass } from '@watch-party/client'

export interface SentFrame {
  type: string
  id: string
  // The request data as the client sent it; tests read any field.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: any
}

type Listener = (event: never) => void

export class FakeSocket implements SocketLike {
  readyState = 0
  readonly sent: SentFrame[] = []
  closedByClient: { code?: number, reason?: string } | undefined
  private readonly listeners = new Map<string, Listener[]>()
  private readonly sendWaiters: Array<{ match: (f: SentFrame) => boolean, resolve: (f: SentFrame) => void }> = []
  private cursor = 0

  constructor (readonly url: string) {}

  addEventListener (type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }

  send (data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    const frame = JSON.parse(data) as SentFrame
    this.sent.push(frame)
    for (const waiter of [...this.sendWaiters]) {
      if (waiter.match(frame)) {
        this.sendWaiters.splice(this.sendWaiters.indexOf(waiter), 1)
        waiter.resolve(frame)
      }
    }
  }

  close (code?: number, reason?: string): void {
    this.closedByClient = { code, reason }
    if (this.readyState === 3) return
    this.readyState = 3
    this.fire('close', { code: code ?? 1005, reason: reason ?? '' })
  }

  /** The server accepts: open, then the `connected` hello. */
  accept (hello: { userId?: string, serverTime?: number, features?: string[] } = {}): void {
    this.readyState = 1
    this.fire('open', {})
    this.deliver({
      type: 'connected',
      data: { userId: hello.userId ?? 'alice', connectionId: `conn-${Math.random()}`, serverTime: hello.serverTime ?? Date.now(), protocolVersion: 1, heartbeatMs: 30000, features: hello.features ?? ['positions', 'catch_up', 'chat_history'] }
    })
  }

  deliver (frame: object): void {
    this.fire('message', { data: JSON.stringify(frame) })
  }

  /** Answers `request` with `frame` (replyTo added). */
  reply (request: SentFrame, frame: object): void {
    this.deliver({ ...frame, replyTo: request.id })
  }

  /** The server closes (or the network drops: 1006). */
  serverClose (code: number, reason = ''): void {
    this.readyState = 3
    this.fire('close', { code, reason })
  }

  /** The next frame the client sends (after those already taken) that matches `type`. */
  async nextSent (type?: string): Promise<SentFrame> {
    for (let i = this.cursor; i < this.sent.length; i++) {
      const frame = this.sent[i]!
      if (type === undefined || frame.type === type) {
        this.cursor = i + 1
        return frame
      }
    }
    const frame = await new Promise<SentFrame>((resolve) => {
      this.sendWaiters.push({ match: (f) => type === undefined || f.type === type, resolve })
    })
    this.cursor = this.sent.indexOf(frame) + 1
    return frame
  }

  /** Frames of `type` sent so far. */
  sentOf (type: string): SentFrame[] {
    return this.sent.filter((f) => f.type === type)
  }

  private fire (type: string, event: object): void {
    for (const listener of this.listeners.get(type) ?? []) (listener as (e: object) => void)(event)
  }
}

export interface FakeServer {
  WebSocket: WebSocketClass
  sockets: FakeSocket[]
  /** The next socket the client opens (or the one it opened already and was not taken yet). */
  nextSocket (): Promise<FakeSocket>
}

export function fakeServer (): FakeServer {
  const sockets: FakeSocket[] = []
  const waiters: Array<(s: FakeSocket) => void> = []
  let taken = 0
  class Socket extends FakeSocket {
    constructor (url: string) {
      super(url)
      sockets.push(this)
      const waiter = waiters.shift()
      if (waiter !== undefined) {
        taken++
        waiter(this)
      }
    }
  }
  return {
    WebSocket: Socket,
    sockets,
    nextSocket: async () => {
      if (taken < sockets.length) return sockets[taken++]!
      return await new Promise((resolve) => { waiters.push(resolve) })
    }
  }
}

export const ROOM_ID = '3f0c2a7e-9b1d-4c5e-8f6a-1b2c3d4e5f60'

/** A Room as the server sends it. */
export function roomShape (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: ROOM_ID, hostId: 'alice', name: 'Friday movie', participants: ['alice'], isActive: true, createdAt: '2026-11-26T08:00:00.000Z', currentVideo: null, ...overrides }
}

let chatCounter = 0
/** A chat stream event of ROOM_ID. */
export function chatEvent (seq: number, message: string, epoch = 'e1', userId = 'bob'): Record<string, unknown> {
  return {
    type: 'chat',
    channel: `room-${ROOM_ID}`,
    seq,
    epoch,
    data: { roomId: ROOM_ID, id: `00000000-0000-4000-8000-${String(++chatCounter).padStart(12, '0')}`, userId, message, sentAt: '2026-11-26T08:00:00.000Z' }
  }
}

export function streamEvent (type: string, seq: number, data: Record<string, unknown>, epoch = 'e1'): Record<string, unknown> {
  return { type, channel: `room-${ROOM_ID}`, seq, epoch, data: { roomId: ROOM_ID, ...data } }
}
