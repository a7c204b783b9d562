/**
 * The Postgres (and PGlite) implementation of RoomStore: rooms, participants, the audit log and the rooms'
 * streams. The contract is RoomStore's (room-store.ts): a change, its audit row and its stream events commit
 * together; any failure to reach the database or to commit surfaces as ServiceUnavailableError.
 */
import { and, asc, count, desc, eq, inArray, lt, or, sql, type SQL } from 'drizzle-orm'
import { BatchWriter } from '../db/batch-writer.js'
import type { Database } from '../db/client.js'
import { roomEvents, roomParticipants, rooms, roomStream, type RoomEventType, type StoredPlayback } from '../db/schema.js'
import { AppError, ServiceUnavailableError } from '../errors.js'
import type {
  HostChange, PageCursor, ParticipantRecord, RoomRecord, RoomStore, RoomWithParticipants, StoredStreamEvent, StreamAppend
} from './room-store.js'

export type { HostChange, HostChangeReason, PageCursor, ParticipantRecord, RoomRecord, RoomWithParticipants } from './room-store.js'

/** Thrown inside a transaction when a compare-and-set finds the host already changed. */
export class HostConflictError extends AppError {
  constructor (roomId: string) {
    super('NOT_HOST', `the host of room ${roomId} changed meanwhile`)
  }
}

/** Thrown inside a transaction to roll it back when the participant it removes was not there. */
class NothingRemoved extends Error {}

/** The seq of a room's last stream event, as a column of a rooms query. */
const lastSeqColumn = sql<number>`coalesce((select max(s.seq) from room_stream s where s.room_id = ${rooms.id}), 0)`.mapWith(Number)

const roomColumns = {
  id: rooms.id,
  name: rooms.name,
  hostId: rooms.hostId,
  isActive: rooms.isActive,
  createdAt: rooms.createdAt,
  closedAt: rooms.closedAt,
  emptySince: rooms.emptySince,
  currentVideo: rooms.currentVideo,
  epoch: rooms.epoch,
  lastSeq: lastSeqColumn
}

/** A rooms row as a raw statement returns it (snake_case; timestamps already parsed by the driver). */
interface RawRoomRow extends Record<string, unknown> {
  id: string
  name: string
  host_id: string
  is_active: boolean
  created_at: Date | string
  closed_at: Date | string | null
  empty_since: Date | string | null
  current_video: StoredPlayback | null
  epoch: string
}

const RAW_ROOM_COLUMNS = sql.raw('id, name, host_id, is_active, created_at, closed_at, empty_since, current_video, epoch')

function toDate (value: Date | string): Date {
  return value instanceof Date ? value : new Date(value)
}

/** A Date as a statement parameter of type timestamptz (ISO text, so pg and PGlite send the same). */
function timestamptz (date: Date): SQL {
  return sql`${date.toISOString()}::timestamptz`
}

/** An object as a statement parameter of type jsonb. */
function jsonb (value: unknown): SQL {
  return sql`${JSON.stringify(value)}::jsonb`
}

/** The rows of a raw statement's result: node-postgres and PGlite both answer `{ rows }`. */
function rowsOf<T> (result: unknown): T[] {
  return (result as { rows: T[] }).rows
}

function fromRawRoom (row: RawRoomRow): RoomRecord {
  return {
    id: row.id,
    name: row.name,
    hostId: row.host_id,
    isActive: row.is_active,
    createdAt: toDate(row.created_at),
    closedAt: row.closed_at === null ? null : toDate(row.closed_at),
    emptySince: row.empty_since === null ? null : toDate(row.empty_since),
    currentVideo: row.current_video,
    epoch: row.epoch,
    lastSeq: 0
  }
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0]
type Runner = Database | Tx

interface JoinWrite extends ParticipantRecord { roomId: string, event: StreamAppend }
interface ChatWrite { roomId: string, event: StreamAppend }

export class RoomRepository implements RoomStore {
  private readonly joins = new BatchWriter<JoinWrite, boolean>(async (joins) => await this.writeJoins(joins))
  private readonly chats = new BatchWriter<ChatWrite, boolean>(async (chats) => await this.writeChats(chats))

  constructor (private readonly db: Database) {}

  async createRoom (input: { name: string, hostId: string, firstParticipant?: ParticipantRecord, emptySince?: Date }): Promise<RoomRecord> {
    // One statement (its CTEs commit together): one round trip instead of a five-statement transaction.
    const first = input.firstParticipant
    const emptySince = first === undefined ? (input.emptySince === undefined ? sql`now()` : timestamptz(input.emptySince)) : sql`null`
    const events = [sql`(1, 'created', ${input.hostId}, jsonb_build_object('name', ${input.name}::text))`]
    if (first !== undefined) events.push(sql`(2, 'joined', ${first.userId}, '{}'::jsonb)`)
    const joined = first === undefined
      ? sql``
      : sql`, joined as (insert into room_participants (room_id, user_id, joined_at) select id, ${first.userId}, ${timestamptz(first.joinedAt)} from room)`
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with room as (
          insert into rooms (name, host_id, empty_since) values (${input.name}, ${input.hostId}, ${emptySince})
          returning ${RAW_ROOM_COLUMNS}
        )${joined}, audit as (
          insert into room_events (room_id, type, actor_id, data)
          select room.id, e.type, e.actor, e.data from room, (values ${sql.join(events, sql`, `)}) as e(ord, type, actor, data) order by e.ord
        )
        select * from room`)
      const row = rowsOf<RawRoomRow>(result)[0]
      if (row === undefined) throw new Error('insert returned no row')
      return fromRawRoom(row)
    })
  }

  async countActiveRoomsHostedBy (hostId: string): Promise<number> {
    return await this.guard(async () => {
      const [row] = await this.db.select({ n: count() }).from(rooms)
        .where(and(eq(rooms.hostId, hostId), eq(rooms.isActive, true)))
      return Number(row?.n ?? 0)
    })
  }

  async findRoom (id: string): Promise<RoomWithParticipants | null> {
    return await this.guard(async () => {
      const [room] = await this.db.select(roomColumns).from(rooms).where(eq(rooms.id, id))
      if (room === undefined) return null
      const participants = await this.db.select({ userId: roomParticipants.userId, joinedAt: roomParticipants.joinedAt })
        .from(roomParticipants).where(eq(roomParticipants.roomId, id))
        .orderBy(asc(roomParticipants.joinedAt), asc(roomParticipants.seq))
      return { ...room, participants }
    })
  }

  async listActiveRooms (limit: number, after?: PageCursor): Promise<RoomWithParticipants[]> {
    return await this.guard(async () => {
      const position = after === undefined
        ? undefined
        : or(lt(rooms.createdAt, after.createdAt), and(eq(rooms.createdAt, after.createdAt), lt(rooms.id, after.id)))
      const page = await this.db.select(roomColumns).from(rooms)
        .where(and(eq(rooms.isActive, true), position))
        .orderBy(desc(rooms.createdAt), desc(rooms.id))
        .limit(limit)
      return await this.withParticipants(page)
    })
  }

  async loadActiveRooms (): Promise<RoomWithParticipants[]> {
    return await this.guard(async () => {
      const active = await this.db.select(roomColumns).from(rooms).where(eq(rooms.isActive, true)).orderBy(asc(rooms.createdAt))
      return await this.withParticipants(active)
    })
  }

  async addParticipant (roomId: string, participant: ParticipantRecord, event: StreamAppend): Promise<boolean> {
    return await this.joins.submit({ roomId, ...participant, event })
  }

  /**
   * One statement for many joins (group commit: a join storm costs the database one commit per batch): the
   * participant rows, the rooms' empty marks, the participant_joined stream rows and the audit rows commit
   * together. Joins into a room that is no longer active write nothing and answer false.
   */
  private async writeJoins (joins: JoinWrite[]): Promise<boolean[]> {
    const rows = sql.join(joins.map((j, i) =>
      sql`(${i}::int, ${j.roomId}::uuid, ${j.userId}::text, ${timestamptz(j.joinedAt)}, ${j.event.seq}::bigint, ${jsonb(j.event.data)})`), sql`, `)
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with input (ord, room_id, user_id, joined_at, seq, data) as (values ${rows}),
        active as (
          select input.* from input join rooms on rooms.id = input.room_id and rooms.is_active
        ), added as (
          insert into room_participants (room_id, user_id, joined_at)
          select room_id, user_id, joined_at from active order by ord
          on conflict do nothing
        ), occupied as (
          update rooms set empty_since = null where id in (select room_id from active)
        ), streamed as (
          insert into room_stream (room_id, seq, type, data, actor_id)
          select room_id, seq, 'participant_joined', data, user_id from active order by ord
        ), audit as (
          insert into room_events (room_id, type, actor_id) select room_id, 'joined', user_id from active order by ord
        )
        select ord from active`)
      const written = new Set(rowsOf<{ ord: number }>(result).map((r) => Number(r.ord)))
      return joins.map((_j, i) => written.has(i))
    })
  }

  async removeParticipant (roomId: string, userId: string, change: { reason: 'left' | 'disconnected', hostChange?: HostChange, emptySince?: Date }, events: StreamAppend[]): Promise<boolean> {
    const { hostChange, emptySince } = change
    if (hostChange !== undefined) {
      // The compare-and-set may find another host and must then undo the removal: a transaction.
      try {
        await this.guard(async () => await this.db.transaction(async (tx) => {
          const removed = await tx.delete(roomParticipants)
            .where(and(eq(roomParticipants.roomId, roomId), eq(roomParticipants.userId, userId)))
            .returning({ userId: roomParticipants.userId })
          if (removed.length === 0) throw new NothingRemoved()
          await this.audit(tx, roomId, 'left', userId, { reason: change.reason })
          await this.casHost(tx, roomId, hostChange, userId)
          if (emptySince !== undefined) await tx.update(rooms).set({ emptySince }).where(eq(rooms.id, roomId))
          await this.appendStream(tx, roomId, events)
        }))
        return true
      } catch (err) {
        if (err instanceof ServiceUnavailableError && err.cause instanceof NothingRemoved) return false
        throw err
      }
    }
    // Otherwise one statement: the writes commit together, in one round trip, and only if a row was removed.
    const markEmpty = emptySince === undefined
      ? sql``
      : sql`, emptied as (update rooms set empty_since = ${timestamptz(emptySince)} where id = ${roomId}::uuid and exists (select 1 from removed))`
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with removed as (
          delete from room_participants where room_id = ${roomId}::uuid and user_id = ${userId} returning user_id
        )${markEmpty}, streamed as (
          insert into room_stream (room_id, seq, type, data, actor_id)
          select ${roomId}::uuid, e.seq, e.type, e.data, ${userId}::text
          from (values ${this.streamValues(events)}) as e(seq, type, data) where exists (select 1 from removed)
        )
        insert into room_events (room_id, type, actor_id, data)
        select ${roomId}::uuid, 'left', ${userId}, jsonb_build_object('reason', ${change.reason}::text) where exists (select 1 from removed)
        returning id`)
      return rowsOf(result).length > 0
    })
  }

  async transferHost (roomId: string, change: HostChange, actorId: string, event: StreamAppend): Promise<boolean> {
    try {
      await this.guard(async () => await this.db.transaction(async (tx) => {
        await this.casHost(tx, roomId, change, actorId)
        await this.appendStream(tx, roomId, [event])
      }))
      return true
    } catch (err) {
      if (err instanceof HostConflictError) return false
      throw err
    }
  }

  async closeRoom (roomId: string, reason: string, actorId: string | null, playback: StoredPlayback | null, event: StreamAppend): Promise<boolean> {
    return await this.guard(async () => await this.db.transaction(async (tx) => {
      const closed = await tx.update(rooms)
        .set({ isActive: false, closedAt: sql`now()`, closeReason: reason, emptySince: null, ...(playback === null ? {} : { currentVideo: playback }) })
        .where(and(eq(rooms.id, roomId), eq(rooms.isActive, true)))
        .returning({ id: rooms.id })
      if (closed.length === 0) return false
      await tx.delete(roomParticipants).where(eq(roomParticipants.roomId, roomId))
      await this.audit(tx, roomId, 'closed', actorId, { reason })
      await this.appendStream(tx, roomId, [event])
      return true
    }))
  }

  async appendChat (roomId: string, event: StreamAppend): Promise<boolean> {
    return await this.chats.submit({ roomId, event })
  }

  /** One statement for many chat lines (group commit), each only into a room that is still active. */
  private async writeChats (chats: ChatWrite[]): Promise<boolean[]> {
    const rows = sql.join(chats.map((c, i) =>
      sql`(${i}::int, ${c.roomId}::uuid, ${c.event.seq}::bigint, ${c.event.type}::text, ${jsonb(c.event.data)}, ${c.event.actorId ?? null}::text, ${c.event.requestId ?? null}::text)`), sql`, `)
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with input (ord, room_id, seq, type, data, actor_id, request_id) as (values ${rows}),
        active as (
          select input.* from input join rooms on rooms.id = input.room_id and rooms.is_active
        ), streamed as (
          insert into room_stream (room_id, seq, type, data, actor_id, request_id)
          select room_id, seq, type, data, actor_id, request_id from active order by ord
        )
        select ord from active`)
      const written = new Set(rowsOf<{ ord: number }>(result).map((r) => Number(r.ord)))
      return chats.map((_c, i) => written.has(i))
    })
  }

  async savePlayback (roomId: string, playback: StoredPlayback): Promise<void> {
    await this.guard(async () => {
      await this.db.update(rooms).set({ currentVideo: playback }).where(eq(rooms.id, roomId))
    })
  }

  async readStream (roomId: string, afterSeq: number, limit: number): Promise<StoredStreamEvent[]> {
    return await this.guard(async () => await this.db.select(streamColumns).from(roomStream)
      .where(and(eq(roomStream.roomId, roomId), sql`${roomStream.seq} > ${afterSeq}`))
      .orderBy(asc(roomStream.seq)).limit(limit))
  }

  async readChatHistory (roomId: string, limit: number): Promise<StoredStreamEvent[]> {
    const newestFirst = await this.guard(async () => await this.db.select(streamColumns).from(roomStream)
      .where(and(eq(roomStream.roomId, roomId), eq(roomStream.type, 'chat')))
      .orderBy(desc(roomStream.seq)).limit(limit))
    return newestFirst.reverse()
  }

  async pruneStream (roomId: string, lastSeq: number, keepEvents: number, keepChats: number): Promise<void> {
    await this.guard(async () => {
      await this.db.execute(sql`
        delete from room_stream where room_id = ${roomId}::uuid and seq <= ${lastSeq - keepEvents}
        and not (type = 'chat' and seq >= coalesce((
          select seq from room_stream where room_id = ${roomId}::uuid and type = 'chat' order by seq desc offset ${Math.max(0, keepChats - 1)} limit 1
        ), 0))`)
    })
  }

  async dropStream (roomId: string): Promise<void> {
    await this.guard(async () => { await this.db.delete(roomStream).where(eq(roomStream.roomId, roomId)) })
  }

  /** The audit trail of one room, oldest first. */
  async listEvents (roomId: string): Promise<Array<{ type: RoomEventType, actorId: string | null, data: Record<string, unknown>, createdAt: Date }>> {
    return await this.guard(async () => await this.db
      .select({ type: roomEvents.type, actorId: roomEvents.actorId, data: roomEvents.data, createdAt: roomEvents.createdAt })
      .from(roomEvents).where(eq(roomEvents.roomId, roomId)).orderBy(asc(roomEvents.id)))
  }

  private async withParticipants<T extends RoomRecord> (page: T[]): Promise<Array<T & { participants: ParticipantRecord[] }>> {
    if (page.length === 0) return []
    const members = await this.db.select({ roomId: roomParticipants.roomId, userId: roomParticipants.userId, joinedAt: roomParticipants.joinedAt })
      .from(roomParticipants)
      .where(inArray(roomParticipants.roomId, page.map((r) => r.id)))
      .orderBy(asc(roomParticipants.joinedAt), asc(roomParticipants.seq))
    const byRoom = new Map<string, ParticipantRecord[]>(page.map((r) => [r.id, []]))
    for (const m of members) byRoom.get(m.roomId)?.push({ userId: m.userId, joinedAt: m.joinedAt })
    return page.map((r) => ({ ...r, participants: byRoom.get(r.id) ?? [] }))
  }

  private streamValues (events: StreamAppend[]): SQL {
    return sql.join(events.map((e) => sql`(${e.seq}::bigint, ${e.type}::text, ${jsonb(e.data)})`), sql`, `)
  }

  private async appendStream (runner: Runner, roomId: string, events: StreamAppend[]): Promise<void> {
    if (events.length === 0) return
    await runner.insert(roomStream).values(events.map((e) => ({
      roomId, seq: e.seq, type: e.type, data: e.data, actorId: e.actorId ?? null, requestId: e.requestId ?? null
    })))
  }

  private async casHost (tx: Tx, roomId: string, change: HostChange, actorId: string): Promise<void> {
    const moved = await tx.update(rooms).set({ hostId: change.to })
      .where(and(eq(rooms.id, roomId), eq(rooms.hostId, change.from), eq(rooms.isActive, true)))
      .returning({ id: rooms.id })
    if (moved.length === 0) throw new HostConflictError(roomId)
    await this.audit(tx, roomId, 'host_changed', actorId, { from: change.from, to: change.to, reason: change.reason })
  }

  private async audit (tx: Tx, roomId: string, type: RoomEventType, actorId: string | null, data: Record<string, unknown> = {}): Promise<void> {
    await tx.insert(roomEvents).values({ roomId, type, actorId, data })
  }

  /** Domain errors pass through; anything else from the driver means the database did not take the call. */
  private async guard<T> (work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      if (err instanceof AppError) throw err
      throw new ServiceUnavailableError(err)
    }
  }
}

const streamColumns = {
  seq: roomStream.seq,
  type: roomStream.type,
  data: roomStream.data,
  actorId: roomStream.actorId,
  requestId: roomStream.requestId,
  createdAt: roomStream.createdAt
}
