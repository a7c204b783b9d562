/**
 * A room's stream as its owner keeps it: the next position, what a stored event looks like on the wire, the
 * catch-up replay, the chat history read back, and the pruning of the stored history.
 *
 * Contracts:
 * - `next` builds the room's next event (seq = last + offset, the room's epoch); nothing is stored or changed.
 *   `committed` records that it was stored: only then is it the room's last position.
 * - `replay` answers every stored event after `since`, exactly as first sent, or undefined (never a part):
 *   another epoch, a position from the future, a gap older than the history, more than REPLAY_MAX_BYTES, or a
 *   history that cannot be read right now.
 * - The stored history is pruned in the background, never in a room's way: to the newest ROOM_HISTORY_SIZE
 *   events, always keeping the newest CHAT_HISTORY_SIZE chat lines.
 */
import { roomChannel, type ChatStreamEventData, type EventDataOf, type StreamEvent, type StreamEventType } from '@watch-party/protocol'
import type { LiveRoom } from './live-room.js'
import type { Logger, RoomLimits } from './room-ports.js'
import type { RoomStore, StoredStreamEvent, StreamAppend } from './room-store.js'

/** How long a chat request id is remembered, so that a retry is answered with the stored event. */
export const CHAT_RETRY_WINDOW_MS = 60_000
/** Prune a room's stored stream every this many events (or a fifth of the history size, if smaller). */
const PRUNE_EVERY = 100

export interface StreamPosition {
  epoch: string
  seq: number
}

export class RoomStream {
  private readonly prunedAt = new Map<string, number>()

  constructor (
    private readonly store: RoomStore,
    private readonly limits: Pick<RoomLimits, 'roomHistorySize' | 'chatHistorySize' | 'replayMaxBytes'>,
    private readonly logger: Logger
  ) {}

  /** The room's next stream event (`offset` 2 for the second event of one change); not yet stored. */
  next<K extends StreamEventType> (room: LiveRoom, type: K, data: EventDataOf<K>, offset = 1): StreamEvent {
    return { type, channel: roomChannel(room.id), seq: room.lastSeq + offset, epoch: room.epoch, data } as unknown as StreamEvent
  }

  /** The event is stored: its position is the room's last; the stored stream is pruned now and then. */
  committed (room: LiveRoom, event: StreamEvent): void {
    room.lastSeq = event.seq
    const pruned = this.prunedAt.get(room.id) ?? 0
    const every = Math.max(1, Math.min(PRUNE_EVERY, Math.floor(this.limits.roomHistorySize / 5)))
    if (room.lastSeq - pruned < every || room.lastSeq <= this.limits.roomHistorySize) return
    this.prunedAt.set(room.id, room.lastSeq)
    void this.store.pruneStream(room.id, room.lastSeq, this.limits.roomHistorySize, this.limits.chatHistorySize)
      .catch((err: unknown) => { this.logger.warn({ err, roomId: room.id }, 'stream history not pruned; will try again later') })
  }

  /** The events after `since`, exactly as first sent, or undefined when the client must rebuild from the snapshot. */
  async replay (room: LiveRoom, since: StreamPosition): Promise<StreamEvent[] | undefined> {
    if (since.epoch !== room.epoch || since.seq > room.lastSeq) return undefined
    const missed = room.lastSeq - since.seq
    if (missed === 0) return []
    let stored: StoredStreamEvent[]
    try {
      stored = await this.store.readStream(room.id, since.seq, missed)
    } catch (err) {
      this.logger.warn({ err, roomId: room.id }, 'history not readable; the rejoin gets the snapshot only')
      return undefined
    }
    if (stored.length !== missed || stored.some((e, i) => e.seq !== since.seq + 1 + i)) return undefined
    const events = stored.map((e) => fromStored(room, e))
    let bytes = 0
    for (const event of events) {
      bytes += Buffer.byteLength(JSON.stringify(event))
      if (bytes > this.limits.replayMaxBytes) return undefined
    }
    return events
  }

  /** Reads a room's chat history back (a room loaded from the database), with the retries still answerable. */
  async loadChat (room: LiveRoom, now: number): Promise<void> {
    this.prunedAt.set(room.id, room.lastSeq)
    if (room.lastSeq === 0 || this.limits.chatHistorySize === 0) return
    const chats = await this.store.readChatHistory(room.id, this.limits.chatHistorySize)
    for (const chat of chats) {
      const requestKey = chat.requestId !== null && chat.actorId !== null && chat.createdAt.getTime() > now - CHAT_RETRY_WINDOW_MS
        ? `${chat.actorId} ${chat.requestId}`
        : undefined
      room.rememberChat(fromStored(room, chat) as ChatStreamEventData, this.limits.chatHistorySize, requestKey, chat.createdAt.getTime())
    }
  }

  /** The events the database has beyond memory's position (a write whose reply was lost), oldest first. */
  async storedBeyond (room: LiveRoom, lastSeq: number): Promise<Array<{ event: StreamEvent, createdAt: Date }>> {
    if (lastSeq <= room.lastSeq) return []
    const stored = await this.store.readStream(room.id, room.lastSeq, lastSeq - room.lastSeq)
    return stored.map((s) => ({ event: fromStored(room, s), createdAt: s.createdAt }))
  }

  forget (roomId: string): void {
    this.prunedAt.delete(roomId)
  }
}

/** A stream event as the store takes it. */
export function toAppend (event: StreamEvent, actorId?: string, requestId?: string): StreamAppend {
  return { seq: event.seq, type: event.type, data: event.data as Record<string, unknown>, actorId, requestId }
}

function fromStored (room: LiveRoom, stored: StoredStreamEvent): StreamEvent {
  return { type: stored.type, channel: roomChannel(room.id), seq: stored.seq, epoch: room.epoch, data: stored.data } as unknown as StreamEvent
}
