/**
 * RoomStore in memory, for testing the room rules and timers without a database. It keeps RoomStore's
 * contract (a change and its stream events land together; a seq is written once; host changes are
 * compare-and-set) and can be told to fail the next writes, or to commit a write and then fail its reply
 * (a lost COMMIT reply: the outcome the caller cannot know).
 */
import { randomUUID } from 'node:crypto'
import type { StoredPlayback } from '../../src/db/schema.js'
import { AppError, ServiceUnavailableError } from '../../src/errors.js'
import type {
  HostChange, PageCursor, ParticipantRecord, RoomRecord, RoomStore, RoomWithParticipants, StoredStreamEvent, StreamAppend
} from '../../src/rooms/room-store.js'

interface StoredRoom extends Omit<RoomRecord, 'lastSeq'> {
  participants: ParticipantRecord[]
  stream: StoredStreamEvent[]
}

type Fault = 'fail' | 'commit-then-fail'

export class FakeRoomStore implements RoomStore {
  readonly rooms = new Map<string, StoredRoom>()
  private readonly faults: Fault[] = []
  /** Calls of each write method, in order (what the tests assert the rules wrote). */
  readonly writes: string[] = []

  constructor (private readonly now: () => number) {}

  /** The next `n` writes fail before changing anything (the database is away). */
  failNextWrites (n = 1): void {
    for (let i = 0; i < n; i++) this.faults.push('fail')
  }

  /** The next write commits, and then its caller is told it failed. */
  loseNextCommitReply (): void {
    this.faults.push('commit-then-fail')
  }

  async createRoom (input: { name: string, hostId: string, firstParticipant?: ParticipantRecord, emptySince?: Date }): Promise<RoomRecord> {
    return await this.write('createRoom', () => {
      const room: StoredRoom = {
        id: randomUUID(),
        name: input.name,
        hostId: input.hostId,
        isActive: true,
        createdAt: new Date(this.now()),
        closedAt: null,
        emptySince: input.firstParticipant === undefined ? (input.emptySince ?? new Date(this.now())) : null,
        currentVideo: null,
        epoch: randomUUID().slice(0, 12),
        participants: input.firstParticipant === undefined ? [] : [input.firstParticipant],
        stream: []
      }
      this.rooms.set(room.id, room)
      return this.record(room)
    })
  }

  async countActiveRoomsHostedBy (hostId: string): Promise<number> {
    return [...this.rooms.values()].filter((r) => r.isActive && r.hostId === hostId).length
  }

  async findRoom (id: string): Promise<RoomWithParticipants | null> {
    const room = this.rooms.get(id)
    return room === undefined ? null : this.withParticipants(room)
  }

  async listActiveRooms (limit: number, after?: PageCursor): Promise<RoomWithParticipants[]> {
    return [...this.rooms.values()]
      .filter((r) => r.isActive)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (b.id < a.id ? -1 : 1))
      .filter((r) => after === undefined || r.createdAt < after.createdAt || (r.createdAt.getTime() === after.createdAt.getTime() && r.id < after.id))
      .slice(0, limit)
      .map((r) => this.withParticipants(r))
  }

  async loadActiveRooms (): Promise<RoomWithParticipants[]> {
    return [...this.rooms.values()].filter((r) => r.isActive).map((r) => this.withParticipants(r))
  }

  async addParticipant (roomId: string, participant: ParticipantRecord, event: StreamAppend): Promise<boolean> {
    return await this.write('addParticipant', () => {
      const room = this.rooms.get(roomId)
      if (room === undefined || !room.isActive) return false
      this.append(room, [event])
      if (!room.participants.some((p) => p.userId === participant.userId)) room.participants.push(participant)
      room.emptySince = null
      return true
    })
  }

  async removeParticipant (roomId: string, userId: string, change: { reason: 'left' | 'disconnected', hostChange?: HostChange, emptySince?: Date }, events: StreamAppend[]): Promise<boolean> {
    return await this.write('removeParticipant', () => {
      const room = this.rooms.get(roomId)
      if (room === undefined || !room.participants.some((p) => p.userId === userId)) return false
      if (change.hostChange !== undefined && room.hostId !== change.hostChange.from) throw new AppError('NOT_HOST', `the host of room ${roomId} changed meanwhile`)
      this.append(room, events)
      room.participants = room.participants.filter((p) => p.userId !== userId)
      if (change.hostChange !== undefined) room.hostId = change.hostChange.to
      if (change.emptySince !== undefined) room.emptySince = change.emptySince
      return true
    })
  }

  async transferHost (roomId: string, change: HostChange, _actorId: string, event: StreamAppend): Promise<boolean> {
    return await this.write('transferHost', () => {
      const room = this.rooms.get(roomId)
      if (room === undefined || !room.isActive || room.hostId !== change.from) return false
      this.append(room, [event])
      room.hostId = change.to
      return true
    })
  }

  async closeRoom (roomId: string, reason: string, _actorId: string | null, playback: StoredPlayback | null, event: StreamAppend): Promise<boolean> {
    return await this.write(`closeRoom:${reason}`, () => {
      const room = this.rooms.get(roomId)
      if (room === undefined || !room.isActive) return false
      this.append(room, [event])
      room.isActive = false
      room.closedAt = new Date(this.now())
      room.participants = []
      if (playback !== null) room.currentVideo = playback
      return true
    })
  }

  async appendChat (roomId: string, event: StreamAppend): Promise<boolean> {
    return await this.write('appendChat', () => {
      const room = this.rooms.get(roomId)
      if (room === undefined || !room.isActive) return false
      this.append(room, [event])
      return true
    })
  }

  async savePlayback (roomId: string, playback: StoredPlayback): Promise<void> {
    await this.write('savePlayback', () => {
      const room = this.rooms.get(roomId)
      if (room !== undefined) room.currentVideo = playback
    })
  }

  async readStream (roomId: string, afterSeq: number, limit: number): Promise<StoredStreamEvent[]> {
    return (this.rooms.get(roomId)?.stream ?? []).filter((e) => e.seq > afterSeq).slice(0, limit).map((e) => ({ ...e }))
  }

  async readChatHistory (roomId: string, limit: number): Promise<StoredStreamEvent[]> {
    return (this.rooms.get(roomId)?.stream ?? []).filter((e) => e.type === 'chat').slice(-limit).map((e) => ({ ...e }))
  }

  async pruneStream (roomId: string, lastSeq: number, keepEvents: number, keepChats: number): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room === undefined) return
    const chats = room.stream.filter((e) => e.type === 'chat').slice(-keepChats).map((e) => e.seq)
    const oldestChat = chats[0] ?? Infinity
    room.stream = room.stream.filter((e) => e.seq > lastSeq - keepEvents || (e.type === 'chat' && e.seq >= oldestChat))
  }

  async dropStream (roomId: string): Promise<void> {
    const room = this.rooms.get(roomId)
    if (room !== undefined) room.stream = []
  }

  private append (room: StoredRoom, events: StreamAppend[]): void {
    for (const e of events) {
      if (room.stream.some((s) => s.seq === e.seq)) throw new Error(`seq ${e.seq} of room ${room.id} is written already`)
    }
    for (const e of events) {
      room.stream.push({ seq: e.seq, type: e.type, data: structuredClone(e.data), actorId: e.actorId ?? null, requestId: e.requestId ?? null, createdAt: new Date(this.now()) })
    }
  }

  private async write<T> (name: string, work: () => T): Promise<T> {
    this.writes.push(name)
    await Promise.resolve()
    const fault = this.faults.shift()
    if (fault === 'fail') throw new ServiceUnavailableError(new Error('the fake database is away'))
    let result: T
    try {
      result = work()
    } catch (err) {
      if (err instanceof AppError) throw err
      throw new ServiceUnavailableError(err)
    }
    if (fault === 'commit-then-fail') throw new ServiceUnavailableError(new Error('the COMMIT reply was lost'))
    return result
  }

  private record (room: StoredRoom): RoomRecord {
    const { participants: _p, stream, ...rest } = room
    return { ...rest, lastSeq: stream.reduce((max, e) => Math.max(max, e.seq), 0) }
  }

  private withParticipants (room: StoredRoom): RoomWithParticipants {
    return { ...this.record(room), participants: room.participants.map((p) => ({ ...p })) }
  }
}
