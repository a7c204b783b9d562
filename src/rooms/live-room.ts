/**
 * One open room as its owner holds it in memory: who is in it, who hosts it, what is playing, where its stream
 * stands and its recent chat. Pure state and rules: no sockets, no database, no timers of its own (the room
 * host owns those).
 */
import type { ChatStreamEventData } from '@watch-party/protocol'
import type { StoredPlayback } from '../db/schema.js'
import type { ParticipantRecord, RoomWithParticipants } from './room-store.js'
import type { Role, Room, SyncData } from './shapes.js'

export interface Participant {
  readonly userId: string
  readonly joinedAt: Date
  /** Ids of this user's connections that have joined the room. Empty while in the reconnect grace. */
  readonly connections: Set<string>
  /** Cancels the pending grace expiry, if the user is disconnected. */
  cancelGrace?: () => void
}

/** A chat line answered once, kept so that a retry of the same request is answered with it. */
export interface AnsweredChat {
  event: ChatStreamEventData
  at: number
}

export class LiveRoom {
  readonly id: string
  readonly name: string
  readonly createdAt: Date
  hostId: string
  /** Insertion order is join order. */
  readonly participants = new Map<string, Participant>()
  playback: StoredPlayback | null
  /** The run of the stream's sequence, and the seq of its last event (0 if none). */
  readonly epoch: string
  lastSeq: number
  /** The newest chat events, oldest first, at most the chat history size. */
  chatHistory: ChatStreamEventData[] = []
  /** Chat requests answered in the last minute, by `${userId} ${requestId}`. */
  readonly answeredChats = new Map<string, AnsweredChat>()
  /**
   * Set when a write's outcome is unknown (the database did not answer, or a COMMIT's reply was lost): memory
   * may disagree with the database, so the room is read again before its next operation.
   */
  stale = false
  /** Cancels the pending empty-room close, if the room is empty. */
  cancelEmptyClose?: () => void

  constructor (record: RoomWithParticipants) {
    this.id = record.id
    this.name = record.name
    this.createdAt = record.createdAt
    this.hostId = record.hostId
    this.playback = record.currentVideo
    this.epoch = record.epoch
    this.lastSeq = record.lastSeq
    for (const p of record.participants) this.addParticipant(p)
  }

  addParticipant (record: ParticipantRecord): Participant {
    const participant: Participant = { userId: record.userId, joinedAt: record.joinedAt, connections: new Set() }
    this.participants.set(record.userId, participant)
    return participant
  }

  roleOf (userId: string): Role {
    return userId === this.hostId ? 'host' : 'viewer'
  }

  /** True when this very connection has joined the room. */
  hasConnection (userId: string, connectionId: string): boolean {
    return this.participants.get(userId)?.connections.has(connectionId) ?? false
  }

  /**
   * Who takes over when `leaving` goes: the longest-present remaining participant, preferring one with a
   * live connection over one inside the reconnect grace. Undefined when nobody remains.
   */
  successorOf (leaving: string): string | undefined {
    let fallback: string | undefined
    for (const p of this.participants.values()) {
      if (p.userId === leaving) continue
      if (p.connections.size > 0) return p.userId
      fallback ??= p.userId
    }
    return fallback
  }

  /** Remembers a chat event in the history (capped) and as the answer to its request. */
  rememberChat (event: ChatStreamEventData, historySize: number, requestKey: string | undefined, at: number): void {
    this.chatHistory.push(event)
    if (this.chatHistory.length > historySize) this.chatHistory.splice(0, this.chatHistory.length - historySize)
    if (requestKey !== undefined) this.answeredChats.set(requestKey, { event, at })
  }

  /** Forgets chat answers older than `olderThan` (epoch ms). */
  forgetAnsweredChats (olderThan: number): void {
    for (const [key, answer] of this.answeredChats) {
      if (answer.at >= olderThan) break // insertion order is answer order
      this.answeredChats.delete(key)
    }
  }

  toRoom (now: number): Room {
    return {
      id: this.id,
      hostId: this.hostId,
      name: this.name,
      participants: [...this.participants.keys()],
      isActive: true,
      createdAt: this.createdAt.toISOString(),
      currentVideo: this.playback === null ? null : extrapolate(this.id, this.playback, now)
    }
  }
}

/**
 * The playback state as of `now`: a playing video's position moves on at its rate since it was stamped.
 * This is what every Room and SyncData handed to a client carries, so a late joiner can start at once.
 */
export function extrapolate (roomId: string, playback: StoredPlayback, now: number): SyncData {
  const elapsed = Math.max(0, now - playback.updatedAt)
  const currentTime = playback.isPlaying
    ? playback.currentTime + elapsed / 1000 * playback.playbackRate
    : playback.currentTime
  return {
    roomId,
    videoUrl: playback.videoUrl,
    currentTime,
    isPlaying: playback.isPlaying,
    playbackRate: playback.playbackRate,
    updatedAt: playback.isPlaying ? Math.max(now, playback.updatedAt) : playback.updatedAt
  }
}

/**
 * Where the host's player is at `at` (epoch ms, server clock), forwards or backwards from its stamp: what a
 * viewer's report at `at` is compared with.
 */
export function hostPositionAt (playback: StoredPlayback, at: number): number {
  return playback.isPlaying
    ? playback.currentTime + (at - playback.updatedAt) / 1000 * playback.playbackRate
    : playback.currentTime
}
