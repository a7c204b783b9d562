/**
 * The room rules applied: the one place that changes rooms, shared by REST and the WebSocket.
 *
 * Contracts:
 * - Every operation on a room runs in that room's queue, so a room's events are produced in one order and
 *   an awaited database write never lets a later operation overtake an earlier one.
 * - Membership and host changes are written to the database first (write-through); only when the write
 *   succeeded are memory, replies and broadcasts changed. A failed write throws SERVICE_UNAVAILABLE and
 *   leaves memory as it was.
 * - Playback state is written behind: at most `playbackFlushMs` after it changes, and on stop().
 * - Replies are sent inside the room's queue, before any later event of the room, so a client never sees
 *   a room event before the answer to the request that subscribed it.
 */
import { randomUUID } from 'node:crypto'
import type { StoredPlayback } from '../db/schema.js'
import { AppError } from '../errors.js'
import type { Clock } from './clock.js'
import { KeyedQueue } from './keyed-queue.js'
import { extrapolate, LiveRoom, type Participant } from './live-room.js'
import type { HostChangeReason, PageCursor, RoomRecord, RoomRepository, RoomWithParticipants } from './room-repository.js'
import { UUID_REGEX, type Role, type Room } from './shapes.js'

/** A server event before it is addressed: the transport adds `channel` and `replyTo`. */
export interface RoomEvent {
  type: string
  data: Record<string, unknown>
}

/** Where the service's events go: the realtime layer implements it (hub + broker). */
export interface RoomEventSink {
  /** Delivers `event` to every connection subscribed to the room but `exceptConnectionId`, in call order. */
  publish (roomId: string, event: RoomEvent, exceptConnectionId?: string): void
  subscribe (roomId: string, connectionId: string): void
  unsubscribe (roomId: string, connectionId: string): void
  /** Unsubscribes every connection of a room that is gone. */
  dropRoom (roomId: string): void
}

export const NO_SINK: RoomEventSink = { publish () {}, subscribe () {}, unsubscribe () {}, dropRoom () {} }

/** Who asks: one connection of one user. */
export interface Actor {
  connectionId: string
  userId: string
}

export type Reply = (event: RoomEvent) => void

/** What a request needs of its sender. 'member' and 'host' mean this connection has joined the room. */
export type Permission = 'anyone' | 'member' | 'host'

export interface Logger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

export interface RoomLimits {
  disconnectGraceMs: number
  emptyRoomTtlMs: number
  maxRoomParticipants: number
  maxRoomsPerHost: number
  playbackFlushMs: number
  maxRoomsPerConnection: number
}

export interface HostSyncInput {
  videoUrl: string
  currentTime: number
  isPlaying: boolean
  playbackRate?: number
}

/** How long to wait before retrying a timer-driven write (grace expiry, TTL close) that failed. */
const RETRY_MS = 1000

export class RoomService {
  private readonly rooms = new Map<string, LiveRoom>()
  private readonly connectionRooms = new Map<string, Set<string>>()
  private readonly queue = new KeyedQueue()
  private readonly dirtyPlayback = new Set<string>()
  private cancelFlush: (() => void) | undefined
  private flushing: Promise<void> | undefined
  private stopped = false

  constructor (
    private readonly repository: RoomRepository,
    private readonly clock: Clock,
    private readonly limits: RoomLimits,
    private readonly logger: Logger,
    private sink: RoomEventSink = NO_SINK
  ) {}

  /** The realtime layer plugs its sink in once it exists. */
  setSink (sink: RoomEventSink): void {
    this.sink = sink
  }

  /**
   * Reads every open room back from the database. Participants get a fresh reconnect grace; rooms whose
   * empty-room TTL ran out meanwhile are closed before this resolves.
   */
  async start (): Promise<void> {
    const records = await this.repository.loadActiveRooms()
    const now = this.clock.now()
    for (const record of records) {
      const room = this.hydrate(record)
      if (room.participants.size === 0) {
        const emptySince = (record.emptySince ?? record.createdAt).getTime()
        if (emptySince + this.limits.emptyRoomTtlMs <= now) await this.queue.run(room.id, async () => { await this.closeIfStillEmpty(room.id) })
      }
    }
    this.scheduleFlush()
    this.logger.info({ rooms: this.rooms.size }, 'rooms read back from the database')
  }

  /** Stops timers, lets queued work finish and writes pending playback state. */
  async stop (): Promise<void> {
    this.stopped = true
    this.cancelFlush?.()
    await this.queue.drain()
    await this.flushPlayback()
    for (const room of this.rooms.values()) this.cancelTimers(room)
  }

  get openRoomCount (): number {
    return this.rooms.size
  }

  get participantCount (): number {
    let n = 0
    for (const room of this.rooms.values()) n += room.participants.size
    return n
  }

  get pendingPlaybackWrites (): number {
    return this.dirtyPlayback.size
  }

  // ---- REST ----

  /** POST /rooms: the caller hosts a room nobody has joined yet; its empty-room TTL starts now. */
  async createRoom (hostId: string, name: string): Promise<Room> {
    return await this.queue.run(`host:${hostId}`, async () => {
      await this.assertBelowRoomLimit(hostId)
      const record = await this.repository.createRoom({ name, hostId, emptySince: new Date(this.clock.now()) })
      const room = this.hydrate({ ...record, participants: [] })
      return room.toRoom(this.clock.now())
    })
  }

  async getRoom (roomId: string): Promise<Room> {
    roomId = canonicalRoomId(roomId)
    const live = this.rooms.get(roomId)
    if (live !== undefined) return live.toRoom(this.clock.now())
    const record = await this.repository.findRoom(roomId)
    if (record === null) throw roomNotFound(roomId)
    return this.recordToRoom(record, record.participants.map((p) => p.userId))
  }

  /** Open rooms, newest first; `next` is where the following page starts, or null on the last page. */
  async listRooms (limit: number, after?: PageCursor): Promise<{ rooms: Room[], next: PageCursor | null }> {
    const page = await this.repository.listActiveRooms(limit + 1, after)
    const hasMore = page.length > limit
    const shown = hasMore ? page.slice(0, limit) : page
    const now = this.clock.now()
    const roomsOut = shown.map((r) => this.rooms.get(r.id)?.toRoom(now) ?? this.recordToRoom(r, []))
    const last = shown[shown.length - 1]
    return { rooms: roomsOut, next: hasMore && last !== undefined ? { createdAt: last.createdAt, id: last.id } : null }
  }

  /** DELETE /rooms/{id}: the host closes the room; every member gets room_closed. Idempotent for the host. */
  async closeRoom (roomId: string, userId: string): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.queue.run(roomId, async () => {
      const live = this.rooms.get(roomId)
      const record = live === undefined ? await this.repository.findRoom(roomId) : undefined
      if (record === null) throw roomNotFound(roomId)
      const hostId = live?.hostId ?? record?.hostId
      if (hostId !== userId) throw new AppError('NOT_HOST', `only the host of room ${roomId} may close it`)
      if (live === undefined && record?.isActive !== true) return
      await this.repository.closeRoom(roomId, 'deleted', userId, live?.playback)
      if (live !== undefined) this.evict(live, 'deleted')
    })
  }

  // ---- WebSocket ----

  /**
   * The permission a request would be refused for, checked before dispatch without waiting for the room's
   * queue; undefined when allowed or when only the queued check can tell (room not loaded).
   */
  refusal (roomId: string, actor: Actor, permission: Permission): AppError | undefined {
    if (permission === 'anyone') return undefined
    if (!UUID_REGEX.test(roomId)) return invalidRoomId(roomId)
    const room = this.rooms.get(canonicalRoomId(roomId))
    if (room === undefined) return undefined
    return checkPermission(room, actor, permission)
  }

  /** create_room: creates the room and puts this connection in it as host. */
  async createAndJoin (actor: Actor, name: string, reply: Reply): Promise<void> {
    this.assertConnectionBelowRoomLimit(actor, undefined)
    await this.queue.run(`host:${actor.userId}`, async () => {
      await this.assertBelowRoomLimit(actor.userId)
      const joinedAt = new Date(this.clock.now())
      const record = await this.repository.createRoom({ name, hostId: actor.userId, firstParticipant: { userId: actor.userId, joinedAt } })
      await this.queue.run(record.id, () => {
        const room = this.hydrate({ ...record, participants: [] })
        room.cancelEmptyClose?.()
        room.cancelEmptyClose = undefined
        this.attach(room, room.addParticipant({ userId: actor.userId, joinedAt }), actor.connectionId)
        reply({ type: 'room_created', data: { room: room.toRoom(this.clock.now()), role: 'host', serverTime: this.clock.now() } })
      })
    })
  }

  /** join_room: idempotent; a user already in (another tab, or within the grace) keeps role and joinedAt. */
  async join (actor: Actor, roomId: string, reply: Reply): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'anyone', async (room) => {
      this.assertConnectionBelowRoomLimit(actor, roomId)
      const existing = room.participants.get(actor.userId)
      if (existing !== undefined) {
        existing.cancelGrace?.()
        existing.cancelGrace = undefined
        this.attach(room, existing, actor.connectionId)
        this.replyJoined(room, actor, reply)
        return
      }
      if (room.participants.size >= this.limits.maxRoomParticipants) {
        throw new AppError('ROOM_FULL', `room ${roomId} has ${this.limits.maxRoomParticipants} participants, its maximum`)
      }
      const joinedAt = new Date(this.clock.now())
      await this.repository.addParticipant(roomId, { userId: actor.userId, joinedAt })
      room.cancelEmptyClose?.()
      room.cancelEmptyClose = undefined
      this.attach(room, room.addParticipant({ userId: actor.userId, joinedAt }), actor.connectionId)
      this.sink.publish(roomId, { type: 'participant_joined', data: { roomId, userId: actor.userId } }, actor.connectionId)
      this.replyJoined(room, actor, reply)
    })
  }

  /** leave_room: this connection leaves; the user leaves the room when it was their last connection in it. */
  async leave (actor: Actor, roomId: string, reply: Reply): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'member', async (room) => {
      const participant = room.participants.get(actor.userId)
      if (participant !== undefined && participant.connections.size > 1) {
        this.detach(room, participant, actor.connectionId)
      } else {
        await this.removeUser(room, actor.userId, 'left')
      }
      reply({ type: 'room_left', data: { roomId } })
    })
  }

  /** host_sync: the new playback state reaches every other connection of the room at once. */
  async hostSync (actor: Actor, roomId: string, input: HostSyncInput, reply: Reply): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'host', (room) => {
      const now = this.clock.now()
      const playback: StoredPlayback = {
        videoUrl: input.videoUrl,
        currentTime: input.currentTime,
        isPlaying: input.isPlaying,
        playbackRate: input.playbackRate ?? 1,
        updatedAt: now
      }
      room.playback = playback
      this.dirtyPlayback.add(roomId)
      this.sink.publish(roomId, { type: 'sync', data: extrapolate(roomId, playback, now) }, actor.connectionId)
      reply({ type: 'ack', data: {} })
    })
  }

  /** transfer_host: compare-and-set on the host, written through before anyone hears of it. */
  async transferHost (actor: Actor, roomId: string, newHostId: string, reply: Reply): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'host', async (room) => {
      if (newHostId === actor.userId) throw new AppError('VALIDATION_FAILED', `${newHostId} already hosts room ${roomId}`)
      if (!room.participants.has(newHostId)) throw new AppError('USER_NOT_IN_ROOM', `${newHostId} is not in room ${roomId}`)
      const moved = await this.repository.transferHost(roomId, { from: actor.userId, to: newHostId, reason: 'transfer' }, actor.userId)
      if (!moved) throw new AppError('NOT_HOST', `the host of room ${roomId} changed meanwhile`)
      const event = this.changeHost(room, newHostId, 'transfer')
      this.sink.publish(roomId, event, actor.connectionId)
      reply(event)
    })
  }

  /** chat: everyone in the room, the sender included, gets the same event. */
  async chat (actor: Actor, roomId: string, message: string, reply: Reply): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'member', (room) => {
      const event: RoomEvent = {
        type: 'chat',
        data: { roomId: room.id, id: randomUUID(), userId: actor.userId, message, sentAt: new Date(this.clock.now()).toISOString() }
      }
      this.sink.publish(roomId, event, actor.connectionId)
      reply(event)
    })
  }

  /**
   * A connection closed without leave_room. Users who have no other connection in a room start their
   * reconnect grace there; nothing is broadcast until it expires.
   */
  disconnect (actor: Actor): void {
    const roomIds = this.connectionRooms.get(actor.connectionId)
    if (roomIds === undefined) return
    this.connectionRooms.delete(actor.connectionId)
    for (const roomId of roomIds) {
      void this.queue.run(roomId, () => {
        const room = this.rooms.get(roomId)
        const participant = room?.participants.get(actor.userId)
        if (room === undefined || participant === undefined) return
        participant.connections.delete(actor.connectionId)
        if (participant.connections.size === 0) this.startGrace(room, participant)
      })
    }
  }

  /** Resolves once every queued room operation has settled (tests and shutdown). */
  async idle (): Promise<void> {
    await this.queue.drain()
  }

  /** Writes every changed playback state now. Failed writes stay pending for the next flush. */
  async flushPlayback (): Promise<void> {
    if (this.flushing !== undefined) return await this.flushing
    this.flushing = (async () => {
      const ids = [...this.dirtyPlayback]
      this.dirtyPlayback.clear()
      await Promise.all(ids.map(async (roomId) => {
        const playback = this.rooms.get(roomId)?.playback
        if (playback == null) return
        try {
          await this.repository.savePlayback(roomId, playback)
        } catch (err) {
          this.dirtyPlayback.add(roomId)
          this.logger.warn({ err, roomId }, 'playback state not persisted; will retry')
        }
      }))
    })()
    try {
      await this.flushing
    } finally {
      this.flushing = undefined
    }
  }

  // ---- internals ----

  /** Runs `task` in the room's queue once the room is resolved and the actor's permission checked. */
  private async inRoom (roomId: string, actor: Actor, permission: Permission, task: (room: LiveRoom) => Promise<void> | void): Promise<void> {
    await this.queue.run(roomId, async () => {
      const room = await this.resolveLive(roomId)
      const refused = checkPermission(room, actor, permission)
      if (refused !== undefined) throw refused
      await task(room)
    })
  }

  /** The live room, read from the database when another process created it. Runs in the room's queue. */
  private async resolveLive (roomId: string): Promise<LiveRoom> {
    const live = this.rooms.get(roomId)
    if (live !== undefined) return live
    const record = await this.repository.findRoom(roomId)
    if (record === null) throw roomNotFound(roomId)
    if (!record.isActive) throw new AppError('ROOM_CLOSED', `room ${roomId} is closed`)
    return this.hydrate(record)
  }

  /** Puts a room read from the database into memory, with the timers its state calls for. */
  private hydrate (record: RoomWithParticipants): LiveRoom {
    const existing = this.rooms.get(record.id)
    if (existing !== undefined) return existing // never replace a live room (and its connections) with a copy
    const room = new LiveRoom(record)
    this.rooms.set(room.id, room)
    for (const participant of room.participants.values()) this.startGrace(room, participant)
    if (room.participants.size === 0) this.scheduleEmptyClose(room, (record.emptySince ?? record.createdAt).getTime())
    return room
  }

  private attach (room: LiveRoom, participant: Participant, connectionId: string): void {
    participant.connections.add(connectionId)
    let set = this.connectionRooms.get(connectionId)
    if (set === undefined) {
      set = new Set()
      this.connectionRooms.set(connectionId, set)
    }
    set.add(room.id)
    this.sink.subscribe(room.id, connectionId)
  }

  private detach (room: LiveRoom, participant: Participant, connectionId: string): void {
    participant.connections.delete(connectionId)
    const set = this.connectionRooms.get(connectionId)
    set?.delete(room.id)
    if (set?.size === 0) this.connectionRooms.delete(connectionId)
    this.sink.unsubscribe(room.id, connectionId)
  }

  private replyJoined (room: LiveRoom, actor: Actor, reply: Reply): void {
    const now = this.clock.now()
    const role: Role = room.roleOf(actor.userId)
    reply({ type: 'room_joined', data: { room: room.toRoom(now), role, serverTime: now } })
  }

  /**
   * The user leaves the room (leave_room, or the grace expired): written through with the host hand-over
   * and the empty mark in one transaction, then participant_left and host_changed are broadcast.
   */
  private async removeUser (room: LiveRoom, userId: string, reason: 'left' | 'disconnected'): Promise<void> {
    const participant = room.participants.get(userId)
    if (participant === undefined) return
    const successor = room.hostId === userId ? room.successorOf(userId) : undefined
    const hostReason: HostChangeReason = reason === 'left' ? 'host_left' : 'host_disconnected'
    const becomesEmpty = room.participants.size === 1
    const now = this.clock.now()
    await this.repository.removeParticipant(room.id, userId, {
      reason,
      hostChange: successor === undefined ? undefined : { from: userId, to: successor, reason: hostReason },
      emptySince: becomesEmpty ? new Date(now) : undefined
    })
    participant.cancelGrace?.()
    for (const connectionId of [...participant.connections]) this.detach(room, participant, connectionId)
    room.participants.delete(userId)
    this.sink.publish(room.id, { type: 'participant_left', data: { roomId: room.id, userId } })
    if (successor !== undefined) this.sink.publish(room.id, this.changeHost(room, successor, hostReason))
    if (becomesEmpty) this.scheduleEmptyClose(room, now)
  }

  private changeHost (room: LiveRoom, newHostId: string, reason: HostChangeReason): RoomEvent {
    const previousHostId = room.hostId
    room.hostId = newHostId
    this.logger.info({ roomId: room.id, hostId: newHostId, previousHostId, reason }, 'host changed')
    return { type: 'host_changed', data: { roomId: room.id, hostId: newHostId, previousHostId, reason } }
  }

  private startGrace (room: LiveRoom, participant: Participant): void {
    participant.cancelGrace?.()
    participant.cancelGrace = this.clock.setTimeout(() => {
      participant.cancelGrace = undefined
      void this.queue.run(room.id, async () => { await this.expireGrace(room.id, participant.userId) })
    }, this.limits.disconnectGraceMs)
  }

  private async expireGrace (roomId: string, userId: string): Promise<void> {
    const room = this.rooms.get(roomId)
    const participant = room?.participants.get(userId)
    if (room === undefined || participant === undefined || participant.connections.size > 0 || this.stopped) return
    try {
      await this.removeUser(room, userId, 'disconnected')
    } catch (err) {
      this.logger.warn({ err, roomId, userId }, 'grace expiry not persisted; will retry')
      participant.cancelGrace = this.clock.setTimeout(() => {
        participant.cancelGrace = undefined
        void this.queue.run(roomId, async () => { await this.expireGrace(roomId, userId) })
      }, RETRY_MS)
    }
  }

  private scheduleEmptyClose (room: LiveRoom, emptySince: number): void {
    room.cancelEmptyClose?.()
    const delay = Math.max(0, emptySince + this.limits.emptyRoomTtlMs - this.clock.now())
    room.cancelEmptyClose = this.clock.setTimeout(() => {
      room.cancelEmptyClose = undefined
      void this.queue.run(room.id, async () => { await this.closeIfStillEmpty(room.id) })
    }, delay)
  }

  private async closeIfStillEmpty (roomId: string): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room === undefined || room.participants.size > 0 || this.stopped) return
    try {
      await this.repository.closeRoom(roomId, 'empty', null, room.playback)
      this.evict(room, 'empty')
    } catch (err) {
      this.logger.warn({ err, roomId }, 'empty room not closed; will retry')
      room.cancelEmptyClose = this.clock.setTimeout(() => {
        room.cancelEmptyClose = undefined
        void this.queue.run(roomId, async () => { await this.closeIfStillEmpty(roomId) })
      }, RETRY_MS)
    }
  }

  /** Forgets a closed room: tells whoever is still subscribed, then frees its memory. */
  private evict (room: LiveRoom, reason: string): void {
    this.sink.publish(room.id, { type: 'room_closed', data: { roomId: room.id, reason } })
    this.cancelTimers(room)
    for (const participant of room.participants.values()) {
      for (const connectionId of participant.connections) {
        const set = this.connectionRooms.get(connectionId)
        set?.delete(room.id)
        if (set?.size === 0) this.connectionRooms.delete(connectionId)
      }
    }
    this.sink.dropRoom(room.id)
    this.rooms.delete(room.id)
    this.dirtyPlayback.delete(room.id)
    this.logger.info({ roomId: room.id, reason }, 'room closed')
  }

  private cancelTimers (room: LiveRoom): void {
    room.cancelEmptyClose?.()
    room.cancelEmptyClose = undefined
    for (const participant of room.participants.values()) {
      participant.cancelGrace?.()
      participant.cancelGrace = undefined
    }
  }

  private scheduleFlush (): void {
    if (this.stopped) return
    this.cancelFlush = this.clock.setTimeout(() => {
      void this.flushPlayback().finally(() => { this.scheduleFlush() })
    }, this.limits.playbackFlushMs)
  }

  /** A connection may be in at most maxRoomsPerConnection rooms; rejoining one it is in is always fine. */
  private assertConnectionBelowRoomLimit (actor: Actor, roomId: string | undefined): void {
    const inRooms = this.connectionRooms.get(actor.connectionId)
    if (inRooms === undefined || (roomId !== undefined && inRooms.has(roomId))) return
    if (inRooms.size >= this.limits.maxRoomsPerConnection) {
      throw new AppError('ROOM_LIMIT_REACHED', `this connection is in ${inRooms.size} rooms (at most ${this.limits.maxRoomsPerConnection}); leave one first`)
    }
  }

  private async assertBelowRoomLimit (hostId: string): Promise<void> {
    const open = await this.repository.countActiveRoomsHostedBy(hostId)
    if (open >= this.limits.maxRoomsPerHost) {
      throw new AppError('ROOM_LIMIT_REACHED', `${hostId} already hosts ${open} open rooms (at most ${this.limits.maxRoomsPerHost}); close one first`)
    }
  }

  private recordToRoom (record: RoomRecord, participants: string[]): Room {
    return {
      id: record.id,
      hostId: record.hostId,
      name: record.name,
      participants,
      isActive: record.isActive,
      createdAt: record.createdAt.toISOString(),
      currentVideo: record.currentVideo === null ? null : extrapolate(record.id, record.currentVideo, this.clock.now())
    }
  }
}

function checkPermission (room: LiveRoom, actor: Actor, permission: Permission): AppError | undefined {
  if (permission === 'anyone') return undefined
  if (!room.hasConnection(actor.userId, actor.connectionId)) {
    return new AppError('NOT_IN_ROOM', `join room ${room.id} first`)
  }
  if (permission === 'host' && room.hostId !== actor.userId) {
    return new AppError('NOT_HOST', `only the host of room ${room.id} may do this`)
  }
  return undefined
}

/**
 * The one spelling of a room id used as a key everywhere (memory, queues, channels): lower case. A UUID in
 * upper case names the same room; keyed as given it would shadow the live room with a fresh copy.
 */
function canonicalRoomId (roomId: string): string {
  if (!UUID_REGEX.test(roomId)) throw invalidRoomId(roomId)
  return roomId.toLowerCase()
}

function invalidRoomId (roomId: string): AppError {
  return new AppError('INVALID_ROOM_ID', `${JSON.stringify(roomId).slice(0, 80)} is not a room id (UUID)`)
}

function roomNotFound (roomId: string): AppError {
  return new AppError('ROOM_NOT_FOUND', `room ${roomId} does not exist`)
}
