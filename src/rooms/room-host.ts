/**
 * The owner side of the rooms this process serves: each room's queue, its live state, its timers (grace,
 * empty-room TTL), its write-through and its stream. REST reads live in room-reads.ts; sockets in src/realtime.
 *
 * Contracts:
 * - Every operation that changes a room runs in that room's queue, so a room's events are produced in one
 *   order and an awaited write never lets a later operation overtake an earlier one. `host_sync` and
 *   `playback_report` change no stored state and run at once on a loaded room, so that they never wait
 *   behind a write (during a database outage they keep flowing).
 * - A stream event gets the next seq of its room and is stored (with the change it records) before anyone
 *   receives it; only when the write succeeded are memory, replies and broadcasts changed. A failed write
 *   throws SERVICE_UNAVAILABLE and leaves memory as it was.
 * - A write whose outcome is unknown marks the room stale: before its next operation the room is read again
 *   from the database, and stream events the database has beyond memory (a COMMIT whose reply was lost) are
 *   published then, so memory, history and every member agree again.
 * - A request that must be stored and has waited STORE_WAIT_MS behind the room's other work answers
 *   SERVICE_UNAVAILABLE at once, instead of queueing behind every pending write.
 * - Replies are sent inside the room's queue, before any later event of the room, so a client never sees a
 *   room event before the answer to the request that subscribed it; a catch-up's replay follows its reply.
 * - Playback state is written behind: at most `playbackFlushMs` after it changes, and on stop().
 */
import { randomUUID } from 'node:crypto'
import { roomChannel, type ChatStreamEventData } from '@watch-party/protocol'
import type { StoredPlayback } from '../db/schema.js'
import { AppError, FencedOutError, ServiceUnavailableError } from '../errors.js'
import type { Clock } from './clock.js'
import { KeyedQueue } from './keyed-queue.js'
import { extrapolate, LiveRoom, type Participant } from './live-room.js'
import { QueuedTimers } from './queued-timers.js'
import { NO_SINK, SOLE_OWNER, type Actor, type Logger, type Ownership, type Permission, type Responder, type RoomEventSink, type RoomLimits } from './room-ports.js'
import { canonicalRoomId, checkPermission, invalidRoomId, roomNotFound } from './room-rules.js'
import type { HostChangeReason, RoomStore, RoomWithParticipants } from './room-store.js'
import type { Room } from './shapes.js'
import { UUID_REGEX } from './shapes.js'
import { CHAT_RETRY_WINDOW_MS, RoomStream, toAppend, type StreamPosition } from './room-stream.js'
import { allowedPlayback, videoUrlProblem } from './video-url.js'
import { ViewerReports, type PlaybackReport } from './viewer-reports.js'

export interface HostSyncInput {
  videoUrl: string
  currentTime: number
  isPlaying: boolean
  playbackRate?: number
  /** The host's estimate of the server clock when currentTime was sampled. */
  at?: number
}

export type { StreamPosition } from './room-stream.js'

/** How far into the past a host_sync's `at` may set updatedAt. */
export const SYNC_AT_MAX_AGE_MS = 5000

/** What a queued operation knows of its own wait. */
interface Turn {
  enqueuedAt: number
}

export class RoomHost {
  private readonly rooms = new Map<string, LiveRoom>()
  private readonly connectionRooms = new Map<string, Set<string>>()
  private readonly queue = new KeyedQueue()
  private readonly timers: QueuedTimers
  private readonly reports: ViewerReports
  private readonly dirtyPlayback = new Set<string>()
  private readonly stream: RoomStream
  private cancelFlush: (() => void) | undefined
  private flushing: Promise<void> | undefined
  private stopped = false

  constructor (
    private readonly store: RoomStore,
    private readonly clock: Clock,
    private readonly limits: RoomLimits,
    private readonly logger: Logger,
    private sink: RoomEventSink = NO_SINK,
    private readonly ownership: Ownership = SOLE_OWNER
  ) {
    this.timers = new QueuedTimers(clock, this.queue, logger)
    this.stream = new RoomStream(store, limits, logger)
    this.reports = new ViewerReports(clock, (room, viewers) => {
      const host = room.participants.get(room.hostId)
      for (const connectionId of host?.connections ?? []) {
        this.sink.sendTo(connectionId, { type: 'viewer_status', channel: roomChannel(room.id), data: { roomId: room.id, viewers } })
      }
    }, (roomId) => this.rooms.get(roomId))
  }

  /** The realtime layer plugs its sink in once it exists. */
  setSink (sink: RoomEventSink): void {
    this.sink = sink
  }

  /**
   * Reads every open room back from the database. Participants get a fresh reconnect grace; rooms whose
   * empty-room TTL ran out meanwhile are closed before this resolves.
   */
  async start (): Promise<void> {
    const records = this.ownership.loadAllAtStart ? await this.store.loadActiveRooms() : []
    const now = this.clock.now()
    for (const record of records) {
      const room = await this.hydrate(record)
      if (room.participants.size === 0 && (record.emptySince ?? record.createdAt).getTime() + this.limits.emptyRoomTtlMs <= now) {
        await this.queue.run(room.id, async () => { await this.closeIfStillEmpty(room.id) })
      }
    }
    this.scheduleFlush()
    this.logger.info({ rooms: this.rooms.size }, 'rooms read back from the database')
  }

  /** Stops timers, lets queued work finish and writes pending playback state. */
  async stop (): Promise<void> {
    this.stopped = true
    this.cancelFlush?.()
    this.reports.stop()
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

  /** The live state of a room this process serves (REST reads), or undefined. */
  live (roomId: string): LiveRoom | undefined {
    return this.rooms.get(roomId)
  }

  // ---- REST ----

  /** POST /rooms: the caller hosts a room nobody has joined yet; its empty-room TTL starts now. */
  async createRoom (hostId: string, name: string): Promise<Room> {
    return await this.queue.run(`host:${hostId}`, async () => {
      await this.assertBelowRoomLimit(hostId)
      const record = await this.store.createRoom({ name, hostId, emptySince: new Date(this.clock.now()) })
      await this.ownership.claimCreated(record.id)
      const room = await this.hydrate({ ...record, participants: [] })
      return room.toRoom(this.clock.now())
    })
  }

  /** DELETE /rooms/{id}: the host closes the room; every member gets room_closed. Idempotent for the host. */
  async closeRoom (roomId: string, userId: string): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.queue.run(roomId, async () => {
      let room = this.rooms.get(roomId)
      if (room === undefined) {
        const record = await this.store.findRoom(roomId)
        if (record === null) throw roomNotFound(roomId)
        if (record.hostId !== userId) throw new AppError('NOT_HOST', `only the host of room ${roomId} may close it`)
        if (!record.isActive) return // closed already: DELETE is idempotent for its host
        room = await this.resolve(roomId, { closed: 'allow' })
        if (room === undefined) return
      }
      await this.refresh(room)
      if (!this.rooms.has(roomId)) return // the refresh found it closed
      if (room.hostId !== userId) throw new AppError('NOT_HOST', `only the host of room ${roomId} may close it`)
      await this.close(room, 'deleted', userId)
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

  /** create_room: creates the room and puts this connection in it as host (no stream event: seq 0). */
  async createAndJoin (actor: Actor, name: string, res: Responder): Promise<void> {
    this.assertConnectionBelowRoomLimit(actor, undefined)
    await this.queue.run(`host:${actor.userId}`, async () => {
      await this.assertBelowRoomLimit(actor.userId)
      const joinedAt = new Date(this.clock.now())
      const record = await this.store.createRoom({ name, hostId: actor.userId, firstParticipant: { userId: actor.userId, joinedAt } })
      await this.ownership.claimCreated(record.id)
      await this.queue.run(record.id, async () => {
        const room = await this.hydrate({ ...record, participants: [] })
        this.cancelEmptyClose(room)
        this.attach(room, room.addParticipant({ userId: actor.userId, joinedAt }), actor.connectionId)
        const now = this.clock.now()
        res.reply({ type: 'room_created', data: { room: room.toRoom(now), role: 'host', serverTime: now, seq: room.lastSeq, epoch: room.epoch, chat: [...room.chatHistory] } })
      })
    })
  }

  /**
   * join_room: idempotent; a user already in (another tab, or within the grace) keeps role and joinedAt and
   * nothing is broadcast. With `since`, the missed stream events follow the reply (recovered: true), or the
   * snapshot is all (recovered: false): never a partial replay.
   */
  async join (actor: Actor, roomId: string, since: StreamPosition | undefined, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'anyone', async (room, turn) => {
      this.assertConnectionBelowRoomLimit(actor, roomId)
      const existing = room.participants.get(actor.userId)
      if (existing !== undefined) {
        existing.cancelGrace?.()
        existing.cancelGrace = undefined
        this.attach(room, existing, actor.connectionId)
      } else {
        if (room.participants.size >= this.limits.maxRoomParticipants) {
          throw new AppError('ROOM_FULL', `room ${roomId} has ${this.limits.maxRoomParticipants} participants, its maximum`)
        }
        this.assertStoreWait(turn)
        const joinedAt = new Date(this.clock.now())
        const event = this.stream.next(room, 'participant_joined', { roomId, userId: actor.userId })
        const written = await this.write(room, async () => await this.store.addParticipant(roomId, { userId: actor.userId, joinedAt }, toAppend(event, actor.userId)))
        if (!written) throw this.closedMeanwhile(room)
        this.stream.committed(room, event)
        this.cancelEmptyClose(room)
        this.attach(room, room.addParticipant({ userId: actor.userId, joinedAt }), actor.connectionId)
        this.sink.publish(roomId, event, actor.connectionId)
      }
      await this.replyJoined(room, actor, since, res)
    })
  }

  /** leave_room: this connection leaves; the user leaves the room when it was their last connection in it. */
  async leave (actor: Actor, roomId: string, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'member', async (room, turn) => {
      const participant = room.participants.get(actor.userId)
      if (participant !== undefined && participant.connections.size > 1) {
        this.detach(room, participant, actor.connectionId)
      } else {
        this.assertStoreWait(turn)
        await this.removeUser(room, actor.userId, 'left')
      }
      res.reply({ type: 'room_left', data: { roomId } })
    })
  }

  /** host_sync: the new playback state reaches every other connection of the room at once. */
  async hostSync (actor: Actor, roomId: string, input: HostSyncInput, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    const problem = videoUrlProblem(input.videoUrl, this.limits.allowedVideoSchemes)
    if (problem !== undefined) throw new AppError('VALIDATION_FAILED', `invalid host_sync request: ${problem}`)
    await this.now(roomId, actor, 'host', (room) => {
      const now = this.clock.now()
      // The host's sample time, when it says (its estimate of the server clock): its uplink delay then does
      // not become every viewer's lag. Clamped: never in the future, never more than 5 s old.
      const updatedAt = input.at === undefined ? now : Math.min(now, Math.max(now - SYNC_AT_MAX_AGE_MS, input.at))
      const playback: StoredPlayback = {
        videoUrl: input.videoUrl,
        currentTime: input.currentTime,
        isPlaying: input.isPlaying,
        playbackRate: input.playbackRate ?? 1,
        updatedAt
      }
      room.playback = playback
      this.dirtyPlayback.add(roomId)
      this.sink.publish(roomId, { type: 'sync', data: extrapolate(roomId, playback, now) }, actor.connectionId)
      res.reply({ type: 'ack', data: {} })
    })
  }

  /** playback_report: a member's player position; the host's connections get viewer_status from it. */
  async playbackReport (actor: Actor, roomId: string, report: PlaybackReport, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.now(roomId, actor, 'member', (room) => {
      this.reports.report(room, actor.userId, report)
      res.reply({ type: 'ack', data: {} })
    })
  }

  /** transfer_host: compare-and-set on the host, written through with its stream event before anyone hears of it. */
  async transferHost (actor: Actor, roomId: string, newHostId: string, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'host', async (room, turn) => {
      if (newHostId === actor.userId) throw new AppError('VALIDATION_FAILED', `${newHostId} already hosts room ${roomId}`)
      if (!room.participants.has(newHostId)) throw new AppError('USER_NOT_IN_ROOM', `${newHostId} is not in room ${roomId}`)
      this.assertStoreWait(turn)
      const event = this.stream.next(room, 'host_changed', { roomId, hostId: newHostId, previousHostId: actor.userId, reason: 'transfer' })
      const moved = await this.write(room, async () => await this.store.transferHost(roomId, { from: actor.userId, to: newHostId, reason: 'transfer' }, actor.userId, toAppend(event, actor.userId)))
      if (!moved) {
        room.stale = true // memory's host is not the database's: read it again before the next operation
        throw new AppError('NOT_HOST', `the host of room ${roomId} changed meanwhile`)
      }
      this.stream.committed(room, event)
      this.setHost(room, newHostId, 'transfer')
      this.sink.publish(roomId, event, actor.connectionId)
      res.reply(event)
    })
  }

  /**
   * chat: stored (a stream event) before everyone in the room, the sender included, gets the same event. A
   * retry of the same request id by the same user within a minute is answered with the stored event.
   */
  async chat (actor: Actor, roomId: string, message: string, requestId: string | undefined, res: Responder): Promise<void> {
    roomId = canonicalRoomId(roomId)
    await this.inRoom(roomId, actor, 'member', async (room, turn) => {
      const now = this.clock.now()
      room.forgetAnsweredChats(now - CHAT_RETRY_WINDOW_MS)
      const requestKey = requestId === undefined ? undefined : `${actor.userId} ${requestId}`
      const answered = requestKey === undefined ? undefined : room.answeredChats.get(requestKey)
      if (answered !== undefined) {
        res.reply(answered.event)
        return
      }
      this.assertStoreWait(turn)
      const event = this.stream.next(room, 'chat', { roomId, id: randomUUID(), userId: actor.userId, message, sentAt: new Date(now).toISOString() })
      const written = await this.write(room, async () => await this.store.appendChat(roomId, toAppend(event, actor.userId, requestId)))
      if (!written) throw this.closedMeanwhile(room)
      this.stream.committed(room, event)
      room.rememberChat(event as ChatStreamEventData, this.limits.chatHistorySize, requestKey, now)
      this.sink.publish(roomId, event, actor.connectionId)
      res.reply(event)
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
          await this.store.savePlayback(roomId, playback)
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

  // ---- ownership (cluster mode) ----

  /** Loads a room this process just became the owner of (a takeover): its members get fresh graces. */
  async adopt (roomId: string): Promise<void> {
    await this.queue.run(roomId, async () => {
      if (!this.rooms.has(roomId)) await this.resolve(roomId, { closed: 'allow' })
    })
  }

  /**
   * Hands a room over (a graceful stop): lets its queued work finish, writes its playback, and forgets it
   * without a word to its members; the next owner reads it from the database.
   */
  async release (roomId: string): Promise<void> {
    await this.queue.run(roomId, async () => {
      const room = this.rooms.get(roomId)
      if (room === undefined) return
      const playback = room.playback
      if (playback !== null && this.dirtyPlayback.has(roomId)) {
        await this.store.savePlayback(roomId, playback).catch((err: unknown) => { this.logger.warn({ err, roomId }, 'playback not written at hand-over') })
      }
      this.drop(room)
    })
  }

  /** Forgets a room at once, with no event (its lease was lost: another process may serve it any moment). */
  dropNow (roomId: string): void {
    const room = this.rooms.get(roomId)
    if (room !== undefined) this.drop(room)
  }

  /**
   * A connection of a user already in the room, re-announced to a new owner after a takeover: its grace (if
   * any) ends and it gets the room's events again. NOT_IN_ROOM when the user is no longer a participant.
   */
  async reattach (actor: Actor, roomId: string): Promise<void> {
    await this.inRoom(roomId, actor, 'anyone', (room) => {
      const participant = room.participants.get(actor.userId)
      if (participant === undefined) throw new AppError('NOT_IN_ROOM', `${actor.userId} is no longer in room ${roomId}`)
      participant.cancelGrace?.()
      participant.cancelGrace = undefined
      this.attach(room, participant, actor.connectionId)
    })
  }

  /** The ids of the rooms this process serves now. */
  roomIds (): string[] {
    return [...this.rooms.keys()]
  }

  // ---- internals: running operations ----

  /** Runs `task` in the room's queue once the room is resolved, fresh, and the actor's permission checked. */
  private async inRoom (roomId: string, actor: Actor, permission: Permission, task: (room: LiveRoom, turn: Turn) => Promise<void> | void): Promise<void> {
    const turn: Turn = { enqueuedAt: this.clock.now() }
    await this.queue.run(roomId, async () => {
      let room = this.rooms.get(roomId) ?? await this.resolve(roomId, { closed: 'refuse' })
      if (room === undefined) throw new AppError('ROOM_CLOSED', `room ${roomId} is closed`)
      // A stale room must be read again before anything is decided on it; after a long wait behind a write that
      // failed, the database is most likely still away: refuse at once rather than wait for a read of our own.
      if (room.stale) this.assertStoreWait(turn)
      await this.refresh(room)
      room = this.rooms.get(roomId)
      if (room === undefined) throw new AppError('ROOM_CLOSED', `room ${roomId} is closed`)
      const refused = checkPermission(room, actor, permission)
      if (refused !== undefined) throw refused
      await task(room, turn)
    })
  }

  /**
   * Runs `task` at once on a loaded room (state that is not stored: sync, reports), even a stale one: during a
   * database outage sync keeps flowing from memory. A room not loaded is loaded in the queue first.
   */
  private async now (roomId: string, actor: Actor, permission: Permission, task: (room: LiveRoom) => void): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room === undefined) {
      await this.inRoom(roomId, actor, permission, task)
      return
    }
    const refused = checkPermission(room, actor, permission)
    if (refused !== undefined) throw refused
    task(room)
  }

  /** A request that must be stored and waited too long behind the room's other work is refused at once. */
  private assertStoreWait (turn: Turn): void {
    const waited = this.clock.now() - turn.enqueuedAt
    if (waited > this.limits.storeWaitMs) {
      throw new AppError('SERVICE_UNAVAILABLE', `the database is slow or unavailable (this request waited ${Math.round(waited)} ms behind other writes of the room); nothing was changed, try again shortly`)
    }
  }

  /** A write of the room's: an unknown outcome marks the room stale. */
  private async write<T> (room: LiveRoom, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      if (err instanceof FencedOutError) {
        this.logger.warn({ roomId: room.id }, 'room fenced out: another node serves it now; dropping it')
        this.drop(room)
        this.ownership.fencedOut(room.id)
      } else if (err instanceof ServiceUnavailableError) {
        room.stale = true
      }
      throw err
    }
  }

  /** The write found the room no longer active: memory learns it at its refresh. */
  private closedMeanwhile (room: LiveRoom): AppError {
    room.stale = true
    return new AppError('ROOM_CLOSED', `room ${room.id} is closed`)
  }

  // ---- internals: the stream ----

  private async replyJoined (room: LiveRoom, actor: Actor, since: StreamPosition | undefined, res: Responder): Promise<void> {
    const now = this.clock.now()
    const snapshot = { room: room.toRoom(now), role: room.roleOf(actor.userId), serverTime: now, seq: room.lastSeq, epoch: room.epoch, chat: [...room.chatHistory] }
    if (since === undefined) {
      res.reply({ type: 'room_joined', data: snapshot })
      return
    }
    const replay = await this.stream.replay(room, since)
    res.reply({ type: 'room_joined', data: { ...snapshot, recovered: replay !== undefined } })
    for (const event of replay ?? []) res.send(event)
  }

  // ---- internals: loading and refreshing rooms ----

  /**
   * The room read from the database into memory, when this process has not loaded it. `closed: 'allow'`
   * answers undefined for a closed room (DELETE is idempotent), `'refuse'` throws ROOM_CLOSED.
   */
  private async resolve (roomId: string, options: { closed: 'allow' | 'refuse' }): Promise<LiveRoom | undefined> {
    if (!this.ownership.owns(roomId)) throw new AppError('SERVICE_UNAVAILABLE', `room ${roomId} is served by another node right now; try again`)
    const record = await this.store.findRoom(roomId)
    if (record === null) throw roomNotFound(roomId)
    if (!record.isActive) {
      if (options.closed === 'refuse') throw new AppError('ROOM_CLOSED', `room ${roomId} is closed`)
      return undefined
    }
    return await this.hydrate(record)
  }

  /** Puts a room read from the database into memory, with its chat history and the timers its state calls for. */
  private async hydrate (record: RoomWithParticipants): Promise<LiveRoom> {
    const existing = this.rooms.get(record.id)
    if (existing !== undefined) return existing // never replace a live room (and its connections) with a copy
    const room = new LiveRoom({ ...record, currentVideo: allowedPlayback(record.currentVideo, this.limits.allowedVideoSchemes) })
    await this.stream.loadChat(room, this.clock.now())
    const again = this.rooms.get(record.id)
    if (again !== undefined) return again
    this.rooms.set(room.id, room)
    for (const participant of room.participants.values()) this.startGrace(room, participant)
    if (room.participants.size === 0) this.scheduleEmptyClose(room, (record.emptySince ?? record.createdAt).getTime())
    return room
  }

  /**
   * A stale room read again (runs in its queue): host, participants and position from the database; stream
   * events it stored beyond memory's position (committed, but their reply was lost) are published now.
   */
  private async refresh (room: LiveRoom): Promise<void> {
    if (!room.stale) return
    const record = await this.store.findRoom(room.id)
    if (record === null) throw roomNotFound(room.id)
    const missed = await this.stream.storedBeyond(room, record.lastSeq)
    room.stale = false
    for (const { event, createdAt } of missed) {
      this.stream.committed(room, event)
      if (event.type === 'chat') room.rememberChat(event as ChatStreamEventData, this.limits.chatHistorySize, undefined, createdAt.getTime())
      this.sink.publish(room.id, event)
    }
    room.lastSeq = Math.max(room.lastSeq, record.lastSeq)
    if (!record.isActive) {
      this.evict(room, 'closed meanwhile')
      return
    }
    if (room.hostId !== record.hostId) this.setHost(room, record.hostId, 'refresh')
    const stored = new Set(record.participants.map((p) => p.userId))
    for (const participant of [...room.participants.values()]) {
      if (stored.has(participant.userId)) continue
      participant.cancelGrace?.()
      for (const connectionId of [...participant.connections]) this.detach(room, participant, connectionId)
      room.participants.delete(participant.userId)
      this.reports.forget(room.id, participant.userId)
    }
    for (const p of record.participants) {
      if (!room.participants.has(p.userId)) this.startGrace(room, room.addParticipant(p))
    }
    if (room.participants.size === 0 && room.cancelEmptyClose === undefined) this.scheduleEmptyClose(room, (record.emptySince ?? new Date(this.clock.now())).getTime())
    if (room.participants.size > 0) this.cancelEmptyClose(room)
    this.logger.info({ roomId: room.id, hostId: room.hostId, participants: room.participants.size, seq: room.lastSeq }, 'room read again after a write of unknown outcome')
  }

  // ---- internals: membership ----

  private attach (room: LiveRoom, participant: Participant, connectionId: string): void {
    participant.connections.add(connectionId)
    let set = this.connectionRooms.get(connectionId)
    if (set === undefined) {
      set = new Set()
      this.connectionRooms.set(connectionId, set)
    }
    set.add(room.id)
    this.sink.subscribe(room.id, connectionId, { epoch: room.epoch, seq: room.lastSeq })
  }

  private detach (room: LiveRoom, participant: Participant, connectionId: string): void {
    participant.connections.delete(connectionId)
    const set = this.connectionRooms.get(connectionId)
    set?.delete(room.id)
    if (set?.size === 0) this.connectionRooms.delete(connectionId)
    this.sink.unsubscribe(room.id, connectionId)
  }

  /**
   * The user leaves the room (leave_room, or the grace expired): written through with its stream events (and
   * the host hand-over, and the empty mark) in one transaction, then participant_left and host_changed are
   * published.
   */
  private async removeUser (room: LiveRoom, userId: string, reason: 'left' | 'disconnected', retried = false): Promise<void> {
    const participant = room.participants.get(userId)
    if (participant === undefined) return
    const successor = room.hostId === userId ? room.successorOf(userId) : undefined
    const hostReason: HostChangeReason = reason === 'left' ? 'host_left' : 'host_disconnected'
    const becomesEmpty = room.participants.size === 1
    const now = this.clock.now()
    const left = this.stream.next(room, 'participant_left', { roomId: room.id, userId })
    const handover = successor === undefined
      ? undefined
      : this.stream.next(room, 'host_changed', { roomId: room.id, hostId: successor, previousHostId: userId, reason: hostReason }, 2)
    const events = handover === undefined ? [left] : [left, handover]
    let removed: boolean
    try {
      removed = await this.write(room, async () => await this.store.removeParticipant(room.id, userId, {
        reason,
        hostChange: successor === undefined ? undefined : { from: userId, to: successor, reason: hostReason },
        emptySince: becomesEmpty ? new Date(now) : undefined
      }, events.map((e) => toAppend(e, userId))))
    } catch (err) {
      // The hand-over's compare-and-set found another host: memory is behind the database. Read it again and
      // decide once more on the truth, instead of retrying the same stale compare-and-set for ever.
      if (retried || !(err instanceof AppError) || err.code !== 'NOT_HOST') throw err
      room.stale = true
      await this.refresh(room)
      if (room.participants.has(userId)) await this.removeUser(room, userId, reason, true)
      return
    }
    if (!removed) {
      // The database no longer has this participant: memory learns the truth (and its events) now.
      room.stale = true
      await this.refresh(room)
      return
    }
    participant.cancelGrace?.()
    for (const connectionId of [...participant.connections]) this.detach(room, participant, connectionId)
    room.participants.delete(userId)
    this.reports.forget(room.id, userId)
    this.stream.committed(room, left)
    this.sink.publish(room.id, left)
    if (handover !== undefined && successor !== undefined) {
      this.stream.committed(room, handover)
      this.setHost(room, successor, hostReason)
      this.sink.publish(room.id, handover)
    }
    if (becomesEmpty) this.scheduleEmptyClose(room, now)
  }

  private setHost (room: LiveRoom, newHostId: string, reason: HostChangeReason | 'refresh'): void {
    const previousHostId = room.hostId
    room.hostId = newHostId
    this.logger.info({ roomId: room.id, hostId: newHostId, previousHostId, reason }, 'host changed')
  }

  private startGrace (room: LiveRoom, participant: Participant): void {
    participant.cancelGrace?.()
    participant.cancelGrace = this.timers.start(room.id, this.limits.disconnectGraceMs, 'grace expiry', async () => {
      await this.expireGrace(room.id, participant.userId)
    })
  }

  private async expireGrace (roomId: string, userId: string): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room === undefined || this.stopped) return
    await this.refresh(room)
    const participant = room.participants.get(userId)
    if (!this.rooms.has(roomId) || participant === undefined || participant.connections.size > 0) return
    await this.removeUser(room, userId, 'disconnected')
  }

  private scheduleEmptyClose (room: LiveRoom, emptySince: number): void {
    room.cancelEmptyClose?.()
    const delay = Math.max(0, emptySince + this.limits.emptyRoomTtlMs - this.clock.now())
    room.cancelEmptyClose = this.timers.start(room.id, delay, 'empty room close', async () => { await this.closeIfStillEmpty(room.id) })
  }

  private cancelEmptyClose (room: LiveRoom): void {
    room.cancelEmptyClose?.()
    room.cancelEmptyClose = undefined
  }

  private async closeIfStillEmpty (roomId: string): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room === undefined || this.stopped) return
    await this.refresh(room)
    if (!this.rooms.has(roomId) || room.participants.size > 0) return
    await this.close(room, 'empty', null)
  }

  /** Closes the room: its room_closed event stored with the close, then published, then memory freed. */
  private async close (room: LiveRoom, reason: 'deleted' | 'empty', actorId: string | null): Promise<void> {
    const event = this.stream.next(room, 'room_closed', { roomId: room.id, reason })
    const closed = await this.write(room, async () => await this.store.closeRoom(room.id, reason, actorId, room.playback, toAppend(event, actorId ?? undefined)))
    if (!closed) {
      room.stale = true
      await this.refresh(room)
      return
    }
    this.stream.committed(room, event)
    this.sink.publish(room.id, event)
    this.evict(room, reason)
  }

  /** Forgets a closed room (its room_closed already published), and lets its stored stream go. */
  private evict (room: LiveRoom, reason: string): void {
    this.drop(room)
    this.sink.dropRoom(room.id)
    void this.store.dropStream(room.id)
      .catch((err: unknown) => { this.logger.warn({ err, roomId: room.id }, 'stream of a closed room not deleted') })
    this.logger.info({ roomId: room.id, reason }, 'room closed')
  }

  /** Forgets a room this process no longer serves: timers, reports, memory; nothing is published or deleted. */
  private drop (room: LiveRoom): void {
    this.cancelTimers(room)
    this.reports.drop(room.id)
    for (const participant of room.participants.values()) {
      for (const connectionId of participant.connections) {
        const set = this.connectionRooms.get(connectionId)
        set?.delete(room.id)
        if (set?.size === 0) this.connectionRooms.delete(connectionId)
      }
    }
    this.rooms.delete(room.id)
    this.stream.forget(room.id)
    this.dirtyPlayback.delete(room.id)
  }

  private cancelTimers (room: LiveRoom): void {
    this.cancelEmptyClose(room)
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
    const open = await this.store.countActiveRoomsHostedBy(hostId)
    if (open >= this.limits.maxRoomsPerHost) {
      throw new AppError('ROOM_LIMIT_REACHED', `${hostId} already hosts ${open} open rooms (at most ${this.limits.maxRoomsPerHost}); close one first`)
    }
  }
}
