/**
 * What the room rules need of persistence: an interface, so that the owner-side logic (room-host.ts) is
 * tested with an in-memory fake and a fake clock, and the Postgres implementation (room-repository.ts) is
 * tested against real databases.
 *
 * Contract of every implementation:
 * - Each method that changes membership or the host writes its audit row and its stream events (with the
 *   positions given) in one statement or transaction: all of it commits, or none of it.
 * - A failure to reach the database or to commit surfaces as ServiceUnavailableError. The outcome of such a
 *   write is unknown (the COMMIT may have applied); callers re-read the room before trusting memory again.
 * - A stream position is written at most once: appending a seq the room already has fails.
 * - Host changes are compare-and-set on the current host: a write that finds another host changes nothing.
 */
import type { StoredPlayback } from '../db/schema.js'

export interface RoomRecord {
  id: string
  name: string
  hostId: string
  isActive: boolean
  createdAt: Date
  closedAt: Date | null
  emptySince: Date | null
  currentVideo: StoredPlayback | null
  /** The run of the room's stream sequence. */
  epoch: string
  /** The seq of the room's last stream event (0 if none). */
  lastSeq: number
}

export interface ParticipantRecord {
  userId: string
  joinedAt: Date
}

export interface RoomWithParticipants extends RoomRecord {
  /** In join order. */
  participants: ParticipantRecord[]
}

export interface PageCursor {
  createdAt: Date
  id: string
}

export type HostChangeReason = 'transfer' | 'host_left' | 'host_disconnected'

export interface HostChange {
  from: string
  to: string
  reason: HostChangeReason
}

/** One stream event to store: its position, type and data exactly as it will be sent. */
export interface StreamAppend {
  seq: number
  type: string
  data: Record<string, unknown>
  /** Whose request produced it (chat: the sender) and that request's id (chat retries are answered from it). */
  actorId?: string
  requestId?: string
}

export interface StoredStreamEvent extends Required<Pick<StreamAppend, 'seq' | 'type' | 'data'>> {
  actorId: string | null
  requestId: string | null
  createdAt: Date
}

export interface RoomStore {
  /**
   * Creates an active room. With `firstParticipant` the creator is in it at once (WebSocket create_room);
   * without, it is empty from `emptySince` and its TTL runs from then.
   */
  createRoom (input: { name: string, hostId: string, firstParticipant?: ParticipantRecord, emptySince?: Date }): Promise<RoomRecord>
  countActiveRoomsHostedBy (hostId: string): Promise<number>
  findRoom (id: string): Promise<RoomWithParticipants | null>
  /** Open rooms with their participants, newest first, strictly after `after` in that order. */
  listActiveRooms (limit: number, after?: PageCursor): Promise<RoomWithParticipants[]>
  /** Every open room with its participants: what a starting process reads back. */
  loadActiveRooms (): Promise<RoomWithParticipants[]>
  /** Adds a participant with its participant_joined event; false (nothing written) when the room is not active. */
  addParticipant (roomId: string, participant: ParticipantRecord, event: StreamAppend): Promise<boolean>
  /**
   * Removes a participant with its stream events (participant_left, then host_changed when `hostChange` moves
   * the host by compare-and-set); with `emptySince` the room's TTL starts. False (nothing written) when the
   * participant was not in the room.
   */
  removeParticipant (roomId: string, userId: string, change: { reason: 'left' | 'disconnected', hostChange?: HostChange, emptySince?: Date }, events: StreamAppend[]): Promise<boolean>
  /** Compare-and-set of the host with its host_changed event; false (nothing changed) when the host is no longer `change.from`. */
  transferHost (roomId: string, change: HostChange, actorId: string, event: StreamAppend): Promise<boolean>
  /** Closes an active room with its room_closed event, empties it and keeps its last playback; false when it was not active. */
  closeRoom (roomId: string, reason: string, actorId: string | null, playback: StoredPlayback | null, event: StreamAppend): Promise<boolean>
  /** Appends a chat event (group-committed with others); false (nothing written) when the room is not active. */
  appendChat (roomId: string, event: StreamAppend): Promise<boolean>
  savePlayback (roomId: string, playback: StoredPlayback): Promise<void>
  /** Stream events after `afterSeq`, oldest first, at most `limit`. */
  readStream (roomId: string, afterSeq: number, limit: number): Promise<StoredStreamEvent[]>
  /** The newest `limit` chat events, oldest first. */
  readChatHistory (roomId: string, limit: number): Promise<StoredStreamEvent[]>
  /** Deletes stream events older than the newest `keepEvents`, except the newest `keepChats` chat events. */
  pruneStream (roomId: string, lastSeq: number, keepEvents: number, keepChats: number): Promise<void>
  /** Deletes the whole stream of a closed room. */
  dropStream (roomId: string): Promise<void>
}
