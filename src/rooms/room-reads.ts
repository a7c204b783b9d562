/**
 * What REST reads need: one room, a page of open rooms. Served from the owner's live state where this process
 * has the room loaded (participants in the grace, playback not yet written), else from the database. Reads
 * never enter a room's queue, so they never wait behind its writes.
 */
import { extrapolate } from './live-room.js'
import type { RoomHost } from './room-host.js'
import { canonicalRoomId, roomNotFound } from './room-rules.js'
import type { PageCursor, RoomStore, RoomWithParticipants } from './room-store.js'
import type { Clock } from './clock.js'
import type { Room } from './shapes.js'
import { allowedPlayback } from './video-url.js'

export class RoomReads {
  constructor (
    private readonly store: RoomStore,
    private readonly host: RoomHost,
    private readonly clock: Clock,
    private readonly allowedVideoSchemes: readonly string[]
  ) {}

  async getRoom (roomId: string): Promise<Room> {
    roomId = canonicalRoomId(roomId)
    const live = this.host.live(roomId)
    if (live !== undefined) return live.toRoom(this.clock.now())
    const record = await this.store.findRoom(roomId)
    if (record === null) throw roomNotFound(roomId)
    return this.recordToRoom(record)
  }

  /** Open rooms, newest first; `next` is where the following page starts, or null on the last page. */
  async listRooms (limit: number, after?: PageCursor): Promise<{ rooms: Room[], next: PageCursor | null }> {
    const page = await this.store.listActiveRooms(limit + 1, after)
    const hasMore = page.length > limit
    const shown = hasMore ? page.slice(0, limit) : page
    const now = this.clock.now()
    const rooms = shown.map((r) => this.host.live(r.id)?.toRoom(now) ?? this.recordToRoom(r))
    const last = shown[shown.length - 1]
    return { rooms, next: hasMore && last !== undefined ? { createdAt: last.createdAt, id: last.id } : null }
  }

  private recordToRoom (record: RoomWithParticipants): Room {
    const playback = allowedPlayback(record.currentVideo, this.allowedVideoSchemes)
    return {
      id: record.id,
      hostId: record.hostId,
      name: record.name,
      participants: record.participants.map((p) => p.userId),
      isActive: record.isActive,
      createdAt: record.createdAt.toISOString(),
      currentVideo: playback === null ? null : extrapolate(record.id, playback, this.clock.now())
    }
  }
}
