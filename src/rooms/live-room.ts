/**
 * One open room as held in memory: who is in it, who hosts it, what is playing. Pure state and rules:
 * no sockets, no database, no timers of its own (the service owns those).
 */
import type { StoredPlayback } from '../db/schema.js'
import type { ParticipantRecord, RoomWithParticipants } from './room-repository.js'
import type { Role, Room, SyncData } from './shapes.js'

export interface Participant {
  readonly userId: string
  readonly joinedAt: Date
  /** Ids of this user's connections that have joined the room. Empty while in the reconnect grace. */
  readonly connections: Set<string>
  /** Cancels the pending grace expiry, if the user is disconnected. */
  cancelGrace?: () => void
}

export class LiveRoom {
  readonly id: string
  readonly name: string
  readonly createdAt: Date
  hostId: string
  /** Insertion order is join order. */
  readonly participants = new Map<string, Participant>()
  playback: StoredPlayback | null
  /** Set when playback changed since it was last persisted. */
  playbackDirty = false
  /** Cancels the pending empty-room close, if the room is empty. */
  cancelEmptyClose?: () => void

  constructor (record: RoomWithParticipants) {
    this.id = record.id
    this.name = record.name
    this.createdAt = record.createdAt
    this.hostId = record.hostId
    this.playback = record.currentVideo
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
