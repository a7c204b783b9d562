/**
 * The watch-party client: one WebSocket at a time, an explicit lifecycle, typed requests, rooms that survive
 * reconnects, token refresh and a server clock estimate.
 *
 * Contracts:
 * - Lifecycle: `closed` → `connecting` → `connected` ⇄ `reconnecting` → `closed`. Each change emits `state`
 *   and the event named after the new state; `reconnecting` is emitted again for every attempt it schedules.
 *   `connected` means the server's `connected` hello arrived, every room's rejoin was sent, then every queued
 *   request.
 * - A request settles exactly once: with its reply, a RequestError (the server's `error`, with its code), a
 *   RequestTimeoutError, a ConnectionLostError (sent, then the socket closed; `chat` is instead sent again with
 *   the same id, which the server answers with the stored line), or a ClientClosedError. Requests made while
 *   (re)connecting wait for the connection, within their timeout.
 * - What a close leads to is decided by its code alone (reconnect.ts, the table in docs/client.md).
 * - After every reconnect each room is rejoined with `since` before anything else is sent (see room.ts).
 */
import type { EventDataOf, Feature, ServerEvent } from '@watch-party/protocol'
import { ClockEstimator, type ClockEstimate } from './clock.js'
import { Emitter } from './emitter.js'
import { ClientClosedError, ConnectionLostError, RequestError, RequestTimeoutError, WatchPartyError } from './errors.js'
import { SOCKET_OPEN, globalWebSocket, localNow, realTimers, withQuery, type SocketLike, type Timers, type WebSocketClass } from './host.js'
import { ABNORMAL_CLOSURE, DEFAULT_BACKOFF, backoffDelay, closePolicy, restartDelay, type BackoffOptions } from './reconnect.js'
import { WatchPartyRoom, type RequestOptions, type RoomLink } from './room.js'
import { tokenExpiresAt } from './token.js'
import { REPLY_TYPES, type Reply, type RequestData, type RequestType } from './types.js'

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed'

export interface CloseInfo {
  code: number
  reason: string
}

export interface ClientOptions {
  /** The server's WebSocket endpoint, e.g. `wss://watch.example.com/ws`. */
  url: string
  /**
   * JWT mode: returns a token for the user (from your backend or identity provider). Called at every connect
   * and again before the token's `exp` (the client then sends `auth`); after a 4401 close the client
   * reconnects only when it returns a different, unexpired token.
   */
  token?: () => string | Promise<string>
  /** Development mode: the user id, sent as `?userId=`. */
  userId?: string
  /** The WebSocket class; default `globalThis.WebSocket` (Node 20 has none: pass `WebSocket` of the `ws` package). */
  WebSocket?: WebSocketClass
  /** How long a request waits for its reply, ms (default 10000). */
  requestTimeoutMs?: number
  /** How long a connection attempt waits for the server's hello, ms (default 10000). */
  connectTimeoutMs?: number
  backoff?: Partial<BackoffOptions>
  /**
   * Asked after a close the client does not retry on its own (1003, 1009, 4429: a bug or a flood on the app's
   * side); return true to reconnect with backoff. Default: stay closed.
   */
  reconnectOn?: (close: CloseInfo) => boolean
  /** Ask for the next token this long before `exp`, ms, or at half the remaining lifetime if that is sooner (default 30000). */
  refreshMarginMs?: number
  /** Clock estimation: pings per round (default 5), ms between rounds (default 60000). */
  clock?: { pings?: number, intervalMs?: number }
  /** The most chat lines each room keeps (default 500). */
  chatLimit?: number
  /** The local clock, epoch ms (default: `performance.timeOrigin + performance.now()`). */
  now?: () => number
  /** Timers (default: the platform's); tests pass a fake clock. */
  timers?: Timers
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number
}

export interface ClientEvents {
  state: { state: ConnectionState, previous: ConnectionState }
  connecting: Record<string, never>
  connected: { userId: string, connectionId: string, features: readonly Feature[], reconnect: boolean }
  /** The connection closed (or an attempt failed); the next attempt starts in `delayMs`. */
  reconnecting: { close: CloseInfo, delayMs: number, attempt: number }
  /** `client`: close() was called; `unauthorized`: 4401 and no new token; `refused`: a close the app did not want to reconnect after. */
  closed: { reason: 'client' | 'unauthorized' | 'refused', close?: CloseInfo }
  /** An error no request is waiting for: an unsolicited `error` frame, a failed token refresh, a room that could not be rejoined. */
  error: Error
  warning: EventDataOf<'warning'>
  /** The server accepted a refreshed token (`auth`) on the open connection; `expiresAt` is its exp, epoch ms. */
  token_refreshed: { expiresAt: number | undefined }
  /** A new clock estimate (after each round of pings). */
  clock: ClockEstimate
  /** Every frame from the server, after the client handled it. */
  event: ServerEvent
}

interface Pending {
  id: string
  type: RequestType
  data: unknown
  resolve: (frame: ServerEvent) => void
  reject: (err: Error) => void
  cancelTimer: () => void
  /** The socket it was sent on; undefined while queued. */
  sentOn: SocketLike | undefined
  onReply: ((frame: ServerEvent) => void) | undefined
  /** Sent again with the same id after a reconnect (the server deduplicates it). */
  resend: boolean
}

interface SendOptions extends RequestOptions {
  onReply?: (frame: ServerEvent) => void
}

/** Rejoin refusals after which a room is over for this client. */
const ROOM_LOST: ReadonlySet<string> = new Set(['ROOM_NOT_FOUND', 'ROOM_CLOSED', 'INVALID_ROOM_ID', 'ROOM_FULL'])
const ROOM_CHANNEL = 'room-'

export class WatchPartyClient extends Emitter<ClientEvents> {
  private currentState: ConnectionState = 'closed'
  private socket: SocketLike | undefined
  private hello: EventDataOf<'connected'> | undefined
  private everConnected = false
  private attempt = 0
  private token: string | undefined
  private nextToken: string | undefined
  private readonly pending = new Map<string, Pending>()
  private readonly rooms = new Map<string, WatchPartyRoom>()
  private readonly rejoining = new Set<WatchPartyRoom>()
  private readonly retryTimers = new Set<() => void>()
  private readonly estimator = new ClockEstimator()
  private provisionalOffset = 0
  private cancelReconnect: (() => void) | undefined
  private cancelConnectTimeout: (() => void) | undefined
  private cancelRefresh: (() => void) | undefined
  private cancelClock: (() => void) | undefined
  private connectWaiters: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  private readonly idPrefix = Math.random().toString(36).slice(2, 10)
  private nextId = 0
  private readonly backoff: BackoffOptions
  private readonly now: () => number
  private readonly timers: Timers
  private readonly random: () => number
  private readonly link: RoomLink
  private readonly WebSocketImpl: WebSocketClass

  constructor (private readonly options: ClientOptions) {
    super()
    if (options.token !== undefined && options.userId !== undefined) throw new TypeError('give either token or userId, not both')
    const WebSocketImpl = options.WebSocket ?? globalWebSocket()
    if (WebSocketImpl === undefined) throw new TypeError('no WebSocket here: pass options.WebSocket (in Node 20, WebSocket of the ws package)')
    this.WebSocketImpl = WebSocketImpl
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    this.now = options.now ?? localNow
    this.timers = options.timers ?? realTimers
    this.random = options.random ?? Math.random
    this.link = {
      userId: () => this.userId,
      serverNow: () => this.serverNow(),
      request: async (type, data, requestOptions) => await this.request(type, data, requestOptions),
      resync: (room) => { if (this.hello !== undefined) this.rejoin(room) },
      forget: (room) => {
        if (this.rooms.get(room.id) === room) this.rooms.delete(room.id)
      }
    }
  }

  get state (): ConnectionState { return this.currentState }
  /** The user this client acts as: from the server's hello, or the development user id until then. */
  get userId (): string | undefined { return this.hello?.userId ?? this.options.userId }
  /** The server's 1.1 features (from its hello); empty until connected. */
  get features (): readonly Feature[] { return this.hello?.features ?? [] }
  /** The rooms this client is in. */
  get joinedRooms (): readonly WatchPartyRoom[] { return [...this.rooms.values()] }
  /** The current clock estimate, once a round of pings has completed. */
  get clock (): ClockEstimate | undefined { return this.estimator.estimate }

  /** The server's clock now, epoch ms: the local clock plus the estimated offset. */
  serverNow (): number {
    return this.now() + (this.estimator.estimate?.offset ?? this.provisionalOffset)
  }

  /** Starts connecting (a no-op while already connecting or connected); resolves once connected. */
  async connect (): Promise<void> {
    if (this.currentState === 'connected') return
    const connected = new Promise<void>((resolve, reject) => { this.connectWaiters.push({ resolve, reject }) })
    if (this.currentState === 'closed') {
      this.attempt = 0
      this.everConnected = false
      this.setState('connecting')
      this.emit('connecting', {})
      void this.open()
    }
    await connected
  }

  /** Closes the connection and stops reconnecting; rooms emit `closed` (`client_closed`) and are forgotten. */
  close (): void {
    const socket = this.socket
    this.teardownConnection()
    this.cancelReconnect?.()
    this.cancelReconnect = undefined
    if (socket !== undefined) {
      try {
        socket.close(1000, 'client closed')
      } catch {
        // Closing a socket still connecting may throw (ws); it is abandoned either way.
      }
    }
    for (const room of [...this.rooms.values()]) room.end({ reason: 'client_closed' })
    this.rooms.clear()
    this.terminate('client', undefined)
  }

  /** Sends a request; resolves with its reply (typed by request type) or rejects with a WatchPartyError. */
  async request<K extends RequestType> (type: K, data: RequestData<K>, options: RequestOptions = {}): Promise<Reply<K>> {
    return await this.send(type, data, options) as Reply<K>
  }

  /** Creates a room; this user is its host and in it. */
  async createRoom (roomName: string, options?: RequestOptions): Promise<WatchPartyRoom> {
    let room: WatchPartyRoom | undefined
    await this.send('create_room', { roomName }, { ...options, onReply: (frame) => { room = this.adopt(frame as Reply<'create_room'>) } })
    return room!
  }

  /** Joins a room (or returns it if this client is already in it). */
  async joinRoom (roomId: string, options?: RequestOptions): Promise<WatchPartyRoom> {
    const existing = this.rooms.get(roomId.toLowerCase())
    if (existing !== undefined) return existing
    let room: WatchPartyRoom | undefined
    await this.send('join_room', { roomId }, { ...options, onReply: (frame) => { room = this.adopt(frame as Reply<'join_room'>) } })
    return room!
  }

  /** A room this client is in, by id. */
  room (roomId: string): WatchPartyRoom | undefined {
    return this.rooms.get(roomId.toLowerCase())
  }

  private adopt (frame: Reply<'create_room'> | Reply<'join_room'>): WatchPartyRoom {
    const existing = this.rooms.get(frame.data.room.id)
    if (existing !== undefined) return existing
    const room = new WatchPartyRoom(this.link, frame, this.options.chatLimit ?? 500)
    this.rooms.set(room.id, room)
    return room
  }

  private async send (type: RequestType, data: unknown, options: SendOptions): Promise<ServerEvent> {
    if (this.currentState === 'closed') throw new ClientClosedError(type)
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000
    return await new Promise<ServerEvent>((resolve, reject) => {
      const id = `${this.idPrefix}-${++this.nextId}`
      const entry: Pending = {
        id,
        type,
        data,
        resolve,
        reject,
        sentOn: undefined,
        onReply: options.onReply,
        resend: type === 'chat',
        cancelTimer: this.timers.setTimeout(() => {
          this.pending.delete(id)
          reject(new RequestTimeoutError(type, timeoutMs))
        }, timeoutMs)
      }
      this.pending.set(id, entry)
      if (this.hello !== undefined) this.write(entry)
    })
  }

  private write (entry: Pending): void {
    const socket = this.socket
    if (socket === undefined || socket.readyState !== SOCKET_OPEN) return
    try {
      socket.send(JSON.stringify({ type: entry.type, id: entry.id, data: entry.data }))
      entry.sentOn = socket
    } catch {
      // The socket is closing; its close event decides what happens to the request.
    }
  }

  private async open (): Promise<void> {
    this.cancelReconnect = undefined
    let url = this.options.url
    try {
      if (this.options.token !== undefined) {
        const token = this.nextToken ?? await this.options.token()
        this.nextToken = undefined
        this.token = token
        url = withQuery(url, 'token', token)
      } else if (this.options.userId !== undefined) {
        url = withQuery(url, 'userId', this.options.userId)
      }
    } catch (err) {
      if (this.currentState === 'closed') return
      this.emit('error', err instanceof Error ? err : new Error(String(err)))
      this.scheduleReconnect({ code: ABNORMAL_CLOSURE, reason: 'the token callback failed' }, backoffDelay(this.attempt++, this.backoff, this.random))
      return
    }
    if (this.currentState === 'closed') return
    const socket = new this.WebSocketImpl(url)
    this.socket = socket
    this.cancelConnectTimeout = this.timers.setTimeout(() => {
      this.abandon(socket, { code: ABNORMAL_CLOSURE, reason: 'no hello from the server in time' })
    }, this.options.connectTimeoutMs ?? 10_000)
    socket.addEventListener('message', (event) => { if (this.socket === socket) this.receive(event.data) })
    socket.addEventListener('close', (event) => { if (this.socket === socket) this.lost({ code: event.code, reason: event.reason }) })
    socket.addEventListener('error', () => { /* a close event follows */ })
  }

  private receive (raw: unknown): void {
    if (typeof raw !== 'string') return
    let frame: ServerEvent
    try {
      frame = JSON.parse(raw) as ServerEvent
    } catch {
      return
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.type !== 'string') return
    if (this.hello === undefined) {
      if (frame.type === 'connected') this.welcome(frame.data)
      return
    }
    this.dispatch(frame)
    this.emit('event', frame)
  }

  private welcome (hello: EventDataOf<'connected'>): void {
    this.cancelConnectTimeout?.()
    this.cancelConnectTimeout = undefined
    this.hello = { ...hello, features: hello.features ?? [] }
    this.estimator.clear()
    this.provisionalOffset = hello.serverTime - this.now()
    this.attempt = 0
    const reconnect = this.everConnected
    this.everConnected = true
    for (const room of this.rooms.values()) this.rejoin(room)
    for (const entry of this.pending.values()) if (entry.sentOn === undefined) this.write(entry)
    this.scheduleRefresh()
    const socket = this.socket
    if (socket !== undefined) void this.clockRound(socket)
    this.setState('connected')
    this.emit('connected', { userId: hello.userId, connectionId: hello.connectionId, features: this.features, reconnect })
    const waiters = this.connectWaiters
    this.connectWaiters = []
    for (const waiter of waiters) waiter.resolve()
  }

  private dispatch (frame: ServerEvent): void {
    if (frame.replyTo !== undefined) {
      const entry = this.pending.get(frame.replyTo)
      if (entry !== undefined) {
        this.pending.delete(entry.id)
        entry.cancelTimer()
        if (frame.type === 'error') {
          entry.reject(new RequestError(frame.data, entry.type))
        } else if (frame.type !== REPLY_TYPES[entry.type]) {
          entry.reject(new WatchPartyError('UNEXPECTED_REPLY', `${entry.type} answered ${frame.type}`, entry.type))
        } else {
          entry.onReply?.(frame)
          entry.resolve(frame)
        }
      }
    }
    switch (frame.type) {
      case 'error':
        if (frame.replyTo === undefined) this.emit('error', new RequestError(frame.data, 'unsolicited'))
        return
      case 'warning':
        this.emit('warning', frame.data)
        return
      case 'connected':
      case 'room_created':
      case 'room_joined':
      case 'room_left':
      case 'ack':
      case 'pong':
        return
      default:
    }
    const channel = frame.channel
    if (channel === undefined || !channel.startsWith(ROOM_CHANNEL)) return
    this.rooms.get(channel.slice(ROOM_CHANNEL.length))?.receive(frame)
  }

  /** Rejoins a room with `since`; a refusal that means the room is gone ends it, others are retried. */
  private rejoin (room: WatchPartyRoom): void {
    if (this.rejoining.has(room)) return
    this.rejoining.add(room)
    const since = room.beginResync()
    const data = since === undefined ? { roomId: room.id } : { roomId: room.id, since }
    const socket = this.socket
    this.send('join_room', data, { onReply: (frame) => { room.takeSnapshot(frame as Reply<'join_room'>, since) } }).then(() => {
      this.rejoining.delete(room)
    }, (err: unknown) => {
      this.rejoining.delete(room)
      if (err instanceof ConnectionLostError || err instanceof ClientClosedError) return
      this.emit('error', err as Error)
      if (err instanceof RequestError && ROOM_LOST.has(err.code)) {
        room.end({ reason: 'lost', error: err })
        return
      }
      const cancel = this.timers.setTimeout(() => {
        this.retryTimers.delete(cancel)
        if (this.socket === socket && this.hello !== undefined && this.rooms.get(room.id) === room) this.rejoin(room)
      }, backoffDelay(0, this.backoff, this.random))
      this.retryTimers.add(cancel)
    })
  }

  /** One round of pings, one at a time, then the next round after the interval. A ping without pong drops the connection. */
  private async clockRound (socket: SocketLike): Promise<void> {
    const pings = this.options.clock?.pings ?? 5
    for (let i = 0; i < pings; i++) {
      if (this.socket !== socket) return
      const sentAt = this.now()
      let receivedAt = sentAt
      try {
        const pong = await this.send('ping', { clientTime: sentAt }, { onReply: () => { receivedAt = this.now() } }) as Reply<'ping'>
        this.estimator.add(sentAt, pong.data.serverTime, receivedAt)
      } catch (err) {
        if (err instanceof RequestTimeoutError) this.abandon(socket, { code: ABNORMAL_CLOSURE, reason: 'no pong in time' })
        return
      }
    }
    const estimate = this.estimator.estimate
    if (this.socket !== socket) return
    if (estimate !== undefined) this.emit('clock', estimate)
    this.cancelClock = this.timers.setTimeout(() => { void this.clockRound(socket) }, this.options.clock?.intervalMs ?? 60_000)
  }

  /** Asks for the next token before the current one expires, and hands it to the server with `auth`. */
  private scheduleRefresh (): void {
    this.cancelRefresh?.()
    this.cancelRefresh = undefined
    const token = this.token
    if (this.options.token === undefined || token === undefined) return
    const expiresAt = tokenExpiresAt(token)
    if (expiresAt === undefined) return
    const remaining = expiresAt - this.serverNow()
    const margin = Math.min(this.options.refreshMarginMs ?? 30_000, remaining / 2)
    const socket = this.socket
    this.cancelRefresh = this.timers.setTimeout(() => { void this.refresh(socket, token) }, Math.max(0, remaining - margin))
  }

  private async refresh (socket: SocketLike | undefined, previous: string): Promise<void> {
    const tokenFn = this.options.token
    if (tokenFn === undefined || socket !== this.socket) return
    try {
      const fresh = await tokenFn()
      if (socket !== this.socket) return
      if (fresh === previous) throw new WatchPartyError('UNAUTHORIZED', 'the token callback returned the token that is about to expire')
      await this.send('auth', { token: fresh }, {})
      if (socket !== this.socket) return
      this.token = fresh
      this.scheduleRefresh()
      this.emit('token_refreshed', { expiresAt: tokenExpiresAt(fresh) })
    } catch (err) {
      if (err instanceof ConnectionLostError || err instanceof ClientClosedError || socket !== this.socket) return
      this.emit('error', err instanceof Error ? err : new Error(String(err)))
      // Try again at half the remaining lifetime; at expiry the server closes with 4401 and the close path takes over.
      const expiresAt = tokenExpiresAt(previous) ?? 0
      const wait = Math.max(1000, (expiresAt - this.serverNow()) / 2)
      this.cancelRefresh = this.timers.setTimeout(() => { void this.refresh(socket, previous) }, wait)
    }
  }

  /** Gives up on a socket that went silent: treated as closed at once, without waiting for a close handshake. */
  private abandon (socket: SocketLike, close: CloseInfo): void {
    if (this.socket !== socket) return
    this.lost(close)
    try {
      socket.close(4000, close.reason)
    } catch {
      // A socket still connecting may throw on close (ws); it is dropped either way.
    }
  }

  /** The current socket closed: settle what depended on it, then follow the close code's policy. */
  private lost (close: CloseInfo): void {
    const socket = this.socket
    this.teardownConnection()
    for (const entry of [...this.pending.values()]) {
      if (entry.sentOn === undefined || entry.sentOn !== socket) continue
      if (entry.resend) {
        entry.sentOn = undefined
        continue
      }
      this.pending.delete(entry.id)
      entry.cancelTimer()
      entry.reject(new ConnectionLostError(entry.type, close.code))
    }
    if (this.currentState === 'closed') return
    switch (closePolicy(close.code)) {
      case 'restart':
        this.scheduleReconnect(close, restartDelay(this.backoff, this.random))
        return
      case 'backoff':
        this.scheduleReconnect(close, backoffDelay(this.attempt++, this.backoff, this.random))
        return
      case 'token':
        void this.afterUnauthorized(close)
        return
      case 'ask':
        if (this.options.reconnectOn?.(close) === true) this.scheduleReconnect(close, backoffDelay(this.attempt++, this.backoff, this.random))
        else this.terminate('refused', close)
    }
  }

  /** 4401: reconnect only with a token that differs from the refused one and has not expired. */
  private async afterUnauthorized (close: CloseInfo): Promise<void> {
    const tokenFn = this.options.token
    if (tokenFn === undefined) {
      this.terminate('unauthorized', close)
      return
    }
    const refused = this.token
    this.setState('reconnecting')
    let fresh: string
    try {
      fresh = await tokenFn()
    } catch (err) {
      this.emit('error', err instanceof Error ? err : new Error(String(err)))
      this.terminate('unauthorized', close)
      return
    }
    if (this.currentState === 'closed') return
    const expiresAt = tokenExpiresAt(fresh)
    if (fresh === refused || (expiresAt !== undefined && expiresAt <= this.serverNow())) {
      this.terminate('unauthorized', close)
      return
    }
    this.nextToken = fresh
    this.scheduleReconnect(close, backoffDelay(this.attempt++, this.backoff, this.random))
  }

  private scheduleReconnect (close: CloseInfo, delayMs: number): void {
    this.setState('reconnecting')
    this.emit('reconnecting', { close, delayMs, attempt: this.attempt })
    this.cancelReconnect?.()
    this.cancelReconnect = this.timers.setTimeout(() => { void this.open() }, delayMs)
  }

  /** Releases everything tied to the current socket (not the rooms or the queued requests). */
  private teardownConnection (): void {
    this.socket = undefined
    this.hello = undefined
    this.cancelConnectTimeout?.()
    this.cancelConnectTimeout = undefined
    this.cancelRefresh?.()
    this.cancelRefresh = undefined
    this.cancelClock?.()
    this.cancelClock = undefined
    for (const cancel of this.retryTimers) cancel()
    this.retryTimers.clear()
    this.rejoining.clear()
    for (const room of this.rooms.values()) room.disconnected()
  }

  /** Enters `closed`: every request still waiting is rejected; rooms are kept for a later connect(). */
  private terminate (reason: ClientEvents['closed']['reason'], close: CloseInfo | undefined): void {
    if (this.currentState === 'closed') return
    this.cancelReconnect?.()
    this.cancelReconnect = undefined
    for (const entry of [...this.pending.values()]) {
      entry.cancelTimer()
      entry.reject(new ClientClosedError(entry.type))
    }
    this.pending.clear()
    this.setState('closed')
    this.emit('closed', close === undefined ? { reason } : { reason, close })
    const waiters = this.connectWaiters
    this.connectWaiters = []
    for (const waiter of waiters) waiter.reject(new ClientClosedError())
  }

  private setState (next: ConnectionState): void {
    const previous = this.currentState
    if (previous === next) return
    this.currentState = next
    this.emit('state', { state: next, previous })
  }
}
