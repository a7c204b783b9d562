/**
 * One room as the client sees it: its state kept current from the room's events, read-only to the app, and
 * kept across reconnects.
 *
 * Contracts:
 * - State changes only from the server's word: a snapshot (room_created / room_joined), a stream event applied
 *   in `seq` order, a `sync`, or the ack of this client's own host_sync. Each change replaces `state` with a
 *   new frozen object and emits `change`, so a UI can compare references.
 * - Stream events are applied exactly once, in order: a `seq` at or below the last one is a duplicate and is
 *   dropped; any other `seq` than last+1 (a gap) or another epoch makes the room rejoin with `since`, and
 *   events that arrive while it does are dropped (the replay brings them).
 * - After a rejoin with `since`: when the server recovered, the snapshot becomes the state and the missed events
 *   are emitted (each with `replayed: true`, then `recovered` with all of them), not applied on top of it; when
 *   it did not, the snapshot becomes the state and `reset` is emitted. Each chat line is emitted once.
 */
import type { EventDataOf, Room as RoomShape, ServerEvent, StreamEvent, StreamEventType } from '@watch-party/protocol'
import { Emitter } from './emitter.js'
import type { WatchPartyError } from './errors.js'
import type { ChatLine, PlaybackState, Reply, RequestData, RequestType, StreamPosition, ViewerStatusRow } from './types.js'

export interface RequestOptions {
  /** Overrides the client's request timeout for this request, ms. */
  timeoutMs?: number
}

/** What a room needs of its client. */
export interface RoomLink {
  userId (): string | undefined
  serverNow (): number
  request<K extends RequestType> (type: K, data: RequestData<K>, options?: RequestOptions): Promise<Reply<K>>
  /** Rejoin the room with `since` (a gap, another epoch). */
  resync (room: WatchPartyRoom): void
  /** The room is over for this client (left, closed, lost). */
  forget (room: WatchPartyRoom): void
}

/** A room's state, frozen; a new object after every change. */
export interface RoomState {
  readonly id: string
  readonly name: string
  readonly hostId: string
  /** User ids in the room (connected, or within the reconnect grace), in join order. */
  readonly participants: readonly string[]
  readonly isActive: boolean
  readonly createdAt: string
  /** The host's playback state, or null until the host has synced. */
  readonly playback: Readonly<PlaybackState> | null
  /** Chat lines, oldest first (the history the server sent at join, then every line since), at most `chatLimit`. */
  readonly chat: readonly Readonly<ChatLine>[]
  /** The host's view of its viewers' drift (viewer_status); empty for viewers. */
  readonly viewers: readonly Readonly<ViewerStatusRow>[]
}

type Replayed = { seq?: number, replayed: boolean }

export interface RoomEvents {
  participant_joined: EventDataOf<'participant_joined'> & Replayed
  participant_left: EventDataOf<'participant_left'> & Replayed
  host_changed: EventDataOf<'host_changed'> & Replayed
  /** Every chat line once: live, or replayed after a reconnect (`replayed: true`). */
  chat: ChatLine & { replayed: boolean }
  /** The host's playback changed (another member's host_sync; the host's own after its ack). */
  sync: PlaybackState
  viewer_status: { viewers: readonly ViewerStatusRow[] }
  /** A rejoin with `since` recovered: `events` are the stream events missed meanwhile, in order (possibly none). */
  recovered: { events: readonly StreamEvent[] }
  /** A rejoin could not recover (history too short, or a new epoch): `state` is the new snapshot; re-render from it. */
  reset: { reason: 'not_recovered' | 'new_epoch', state: RoomState }
  /** The room is over for this client: closed by the server, left, lost (the rejoin was refused), or the client closed. */
  closed: { reason: 'deleted' | 'empty' | 'left' | 'lost' | 'client_closed', error?: WatchPartyError }
  /** Any change of `state`. */
  change: RoomState
}

type Snapshot = Reply<'join_room'> | Reply<'create_room'>

/** A room this client is in. Obtain one with `client.createRoom` or `client.joinRoom`. */
export class WatchPartyRoom extends Emitter<RoomEvents> {
  readonly id: string
  private current!: RoomState
  private epoch: string | undefined
  private seq = 0
  private maxChatSeq = 0
  /** While a rejoin is under way: stream events are dropped until its snapshot. */
  private resyncing = false
  /** After a recovered rejoin: the seq up to which events are the replay. */
  private replayUntil: number | undefined
  private replayed: StreamEvent[] = []
  private ended = false
  private initialized = false

  /** @internal Built by the client from the reply to create_room or join_room. */
  constructor (private readonly link: RoomLink, snapshot: Snapshot, private readonly chatLimit: number) {
    super()
    this.id = snapshot.data.room.id
    this.takeSnapshot(snapshot, undefined)
  }

  get state (): RoomState { return this.current }
  get name (): string { return this.current.name }
  get hostId (): string { return this.current.hostId }
  get participants (): readonly string[] { return this.current.participants }
  get isActive (): boolean { return this.current.isActive }
  get playback (): Readonly<PlaybackState> | null { return this.current.playback }
  get chat (): readonly Readonly<ChatLine>[] { return this.current.chat }
  get viewers (): readonly Readonly<ViewerStatusRow>[] { return this.current.viewers }
  /** Whether this client's user is the host. */
  get isHost (): boolean { return this.current.hostId === this.link.userId() }
  /** False once the room is over for this client (see `closed`). */
  get joined (): boolean { return !this.ended }
  /** The position of the last stream event applied, or undefined when the server gives no positions. */
  get position (): StreamPosition | undefined {
    return this.epoch === undefined ? undefined : { epoch: this.epoch, seq: this.seq }
  }

  /**
   * Where the host's video is now: the playback state extrapolated to the server clock
   * (`currentTime + (serverNow - updatedAt) / 1000 * playbackRate` while playing), in seconds; undefined
   * until the host has synced.
   */
  expectedPosition (at: number = this.link.serverNow()): number | undefined {
    const playback = this.current.playback
    if (playback === null) return undefined
    if (!playback.isPlaying) return playback.currentTime
    return Math.max(0, playback.currentTime + (at - playback.updatedAt) / 1000 * playback.playbackRate)
  }

  /** Sends a chat line; resolves with it as the room stored it. */
  async sendChat (message: string, options?: RequestOptions): Promise<ChatLine> {
    const reply = await this.link.request('chat', { roomId: this.id, message }, options)
    return reply.seq === undefined ? reply.data : { ...reply.data, seq: reply.seq }
  }

  /**
   * The host's playback state, stamped with `at` = the server clock now (the server credits the uplink delay).
   * Resolves on the ack; the room's `playback` is then this state.
   */
  async sync (state: { videoUrl: string, currentTime: number, isPlaying: boolean, playbackRate?: number }, options?: RequestOptions): Promise<void> {
    const at = this.link.serverNow()
    await this.link.request('host_sync', { roomId: this.id, ...state, at }, options)
    this.setPlayback({ roomId: this.id, videoUrl: state.videoUrl, currentTime: state.currentTime, isPlaying: state.isPlaying, playbackRate: state.playbackRate ?? 1, updatedAt: at })
  }

  /** A viewer's player position now, for the host's drift view (send one or two a second at most). */
  async report (state: { currentTime: number, isPlaying: boolean, buffering?: boolean }, options?: RequestOptions): Promise<void> {
    await this.link.request('playback_report', { roomId: this.id, ...state, at: this.link.serverNow() }, options)
  }

  async transferHost (newHostId: string, options?: RequestOptions): Promise<void> {
    await this.link.request('transfer_host', { roomId: this.id, newHostId }, options)
  }

  /** Leaves the room; it emits `closed` with reason `left` and the client forgets it. */
  async leave (options?: RequestOptions): Promise<void> {
    await this.link.request('leave_room', { roomId: this.id }, options)
    this.end({ reason: 'left' })
  }

  /** @internal A frame on this room's channel. */
  receive (frame: ServerEvent): void {
    if (this.ended) return
    switch (frame.type) {
      case 'sync':
        if ('roomId' in frame.data) {
          this.setPlayback(frame.data)
          this.emit('sync', frame.data)
        }
        return
      case 'viewer_status':
        this.update({ viewers: Object.freeze([...frame.data.viewers]) })
        this.emit('viewer_status', { viewers: this.current.viewers })
        return
      case 'participant_joined':
      case 'participant_left':
      case 'host_changed':
      case 'chat':
      case 'room_closed':
        this.receiveStream(frame as StreamEvent)
        return
      default:
    }
  }

  /** @internal The client lost its connection: nothing is applied until the rejoin's snapshot. */
  disconnected (): void {
    this.resyncing = true
    this.replayUntil = undefined
  }

  /** @internal A rejoin is about to be sent: where to recover from. */
  beginResync (): StreamPosition | undefined {
    this.resyncing = true
    this.replayUntil = undefined
    return this.position
  }

  /** @internal The reply to a rejoin, applied before any frame after it. */
  takeSnapshot (snapshot: Snapshot, since: StreamPosition | undefined): void {
    const { room, seq, epoch, chat } = snapshot.data
    const recovered = since !== undefined && 'recovered' in snapshot.data && snapshot.data.recovered === true && epoch === since.epoch
    const first = !this.initialized
    this.initialized = true
    const newEpoch = !first && epoch !== this.epoch
    const history: ChatLine[] = chat.map((e) => ({ ...e.data, seq: e.seq }))
    let lines = first || newEpoch ? history : this.current.chat
    if (!first && !newEpoch && !recovered) lines = [...lines, ...history.filter((l) => (l.seq ?? 0) > this.maxChatSeq)]
    if (first || newEpoch) this.maxChatSeq = 0
    for (const line of lines) this.maxChatSeq = Math.max(this.maxChatSeq, line.seq ?? 0)
    this.current = freeze(room, this.trim(lines), first ? [] : this.current.viewers)
    this.epoch = epoch
    this.resyncing = false
    if (recovered) {
      this.seq = since.seq
      this.replayed = []
      this.replayUntil = seq
      if (seq <= since.seq) this.finishReplay()
    } else {
      this.seq = seq
      this.replayUntil = undefined
    }
    if (first) return
    this.emit('change', this.current)
    if (!recovered) this.emit('reset', { reason: newEpoch ? 'new_epoch' : 'not_recovered', state: this.current })
    if (!room.isActive && !recovered) this.end({ reason: 'deleted' })
  }

  /** @internal */
  end (closed: RoomEvents['closed']): void {
    if (this.ended) return
    this.ended = true
    if (this.current.isActive && closed.reason !== 'left' && closed.reason !== 'client_closed' && closed.reason !== 'lost') this.update({ isActive: false })
    this.link.forget(this)
    this.emit('closed', closed)
  }

  private receiveStream (event: StreamEvent): void {
    if (event.seq === undefined || event.epoch === undefined || this.epoch === undefined) {
      // A server without positions: apply as it comes.
      this.apply(event, false)
      return
    }
    if (this.resyncing) return
    if (event.epoch !== this.epoch) {
      this.link.resync(this)
      return
    }
    if (event.seq <= this.seq) return
    if (event.seq !== this.seq + 1) {
      this.link.resync(this)
      return
    }
    this.seq = event.seq
    if (this.replayUntil !== undefined) {
      this.replayed.push(event)
      this.apply(event, true)
      if (event.seq >= this.replayUntil) this.finishReplay()
      return
    }
    this.apply(event, false)
  }

  private finishReplay (): void {
    this.replayUntil = undefined
    const events = this.replayed
    this.replayed = []
    this.emit('recovered', { events })
  }

  /** Applies a stream event (a replayed one only adds its chat line: the snapshot already holds the rest). */
  private apply (event: StreamEvent, replayed: boolean): void {
    const type: StreamEventType = event.type
    switch (event.type) {
      case 'participant_joined':
        if (!replayed && !this.current.participants.includes(event.data.userId)) {
          this.update({ participants: Object.freeze([...this.current.participants, event.data.userId]) })
        }
        this.emit('participant_joined', { ...event.data, seq: event.seq, replayed })
        return
      case 'participant_left':
        if (!replayed) this.update({ participants: Object.freeze(this.current.participants.filter((u) => u !== event.data.userId)) })
        this.emit('participant_left', { ...event.data, seq: event.seq, replayed })
        return
      case 'host_changed':
        if (!replayed) this.update({ hostId: event.data.hostId })
        this.emit('host_changed', { ...event.data, seq: event.seq, replayed })
        return
      case 'chat': {
        const line: ChatLine = event.seq === undefined ? event.data : { ...event.data, seq: event.seq }
        if (line.seq !== undefined && line.seq <= this.maxChatSeq) return
        this.maxChatSeq = Math.max(this.maxChatSeq, line.seq ?? 0)
        this.update({ chat: this.trim([...this.current.chat, line]) })
        this.emit('chat', { ...line, replayed })
        return
      }
      case 'room_closed':
        this.end({ reason: event.data.reason })
        return
      default:
        return void type
    }
  }

  private setPlayback (playback: PlaybackState): void {
    this.update({ playback: Object.freeze({ ...playback }) })
  }

  private trim (lines: readonly ChatLine[]): readonly ChatLine[] {
    return Object.freeze(lines.length > this.chatLimit ? lines.slice(lines.length - this.chatLimit) : [...lines])
  }

  private update (patch: Partial<RoomState>): void {
    this.current = Object.freeze({ ...this.current, ...patch })
    this.emit('change', this.current)
  }
}

function freeze (room: RoomShape, chat: readonly ChatLine[], viewers: readonly ViewerStatusRow[]): RoomState {
  return Object.freeze({
    id: room.id,
    name: room.name,
    hostId: room.hostId,
    participants: Object.freeze([...room.participants]),
    isActive: room.isActive,
    createdAt: room.createdAt,
    playback: room.currentVideo === null ? null : Object.freeze({ ...room.currentVideo }),
    chat,
    viewers
  })
}
