/**
 * Persistence of rooms, participants and the audit log.
 *
 * Contract: every method that changes membership or the host does so together with its room_events row, in
 * one transaction or one statement (whose parts commit together), so the database never holds a change
 * without its audit entry. Any failure to reach the database or to commit surfaces as
 * ServiceUnavailableError, and then nothing was changed.
 * Host changes are compare-and-set on the current host: a write that finds another host changes nothing.
 */
import { and, asc, count, desc, eq, inArray, lt, or, sql, type SQL } from 'drizzle-orm'
import { BatchWriter } from '../db/batch-writer.js'
import type { Database } from '../db/client.js'
import { roomEvents, roomParticipants, rooms, type RoomEventType, type StoredPlayback } from '../db/schema.js'
import { AppError, ServiceUnavailableError } from '../errors.js'

export interface RoomRecord {
  id: string
  name: string
  hostId: string
  isActive: boolean
  createdAt: Date
  closedAt: Date | null
  emptySince: Date | null
  currentVideo: StoredPlayback | null
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

/** Thrown inside a transaction when a compare-and-set finds the host already changed. */
export class HostConflictError extends AppError {
  constructor (roomId: string) {
    super('NOT_HOST', `the host of room ${roomId} changed meanwhile`)
  }
}

const roomColumns = {
  id: rooms.id,
  name: rooms.name,
  hostId: rooms.hostId,
  isActive: rooms.isActive,
  createdAt: rooms.createdAt,
  closedAt: rooms.closedAt,
  emptySince: rooms.emptySince,
  currentVideo: rooms.currentVideo
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
}

const RAW_ROOM_COLUMNS = sql.raw('id, name, host_id, is_active, created_at, closed_at, empty_since, current_video')

function toDate (value: Date | string): Date {
  return value instanceof Date ? value : new Date(value)
}

/** A Date as a statement parameter of type timestamptz (ISO text, so pg and PGlite send the same). */
function timestamptz (date: Date): SQL {
  return sql`${date.toISOString()}::timestamptz`
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
    currentVideo: row.current_video
  }
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0]

export class RoomRepository {
  private readonly joins = new BatchWriter<ParticipantRecord & { roomId: string }>(async (joins) => { await this.writeJoins(joins) })

  constructor (private readonly db: Database) {}

  /**
   * Creates an active room. With `firstParticipant` the creator is in it at once (WebSocket create_room);
   * without, it is empty from `emptySince` (the service's clock) and its TTL runs from then.
   */
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

  /** Open rooms, newest first, strictly after `after` in that order. */
  async listActiveRooms (limit: number, after?: PageCursor): Promise<RoomRecord[]> {
    return await this.guard(async () => {
      const position = after === undefined
        ? undefined
        : or(lt(rooms.createdAt, after.createdAt), and(eq(rooms.createdAt, after.createdAt), lt(rooms.id, after.id)))
      return await this.db.select(roomColumns).from(rooms)
        .where(and(eq(rooms.isActive, true), position))
        .orderBy(desc(rooms.createdAt), desc(rooms.id))
        .limit(limit)
    })
  }

  /** Every open room with its participants: what a starting process reads back. */
  async loadActiveRooms (): Promise<RoomWithParticipants[]> {
    return await this.guard(async () => {
      const active = await this.db.select(roomColumns).from(rooms).where(eq(rooms.isActive, true)).orderBy(asc(rooms.createdAt))
      if (active.length === 0) return []
      const members = await this.db.select({ roomId: roomParticipants.roomId, userId: roomParticipants.userId, joinedAt: roomParticipants.joinedAt })
        .from(roomParticipants)
        .where(inArray(roomParticipants.roomId, active.map((r) => r.id)))
        .orderBy(asc(roomParticipants.joinedAt), asc(roomParticipants.seq))
      const byRoom = new Map<string, ParticipantRecord[]>(active.map((r) => [r.id, []]))
      for (const m of members) byRoom.get(m.roomId)?.push({ userId: m.userId, joinedAt: m.joinedAt })
      return active.map((r) => ({ ...r, participants: byRoom.get(r.id) ?? [] }))
    })
  }

  /**
   * Adds a participant (idempotent). Joins that arrive while others are being written are written together
   * in one statement (group commit): a join storm costs the database one commit per batch, not per join.
   */
  async addParticipant (roomId: string, participant: ParticipantRecord): Promise<void> {
    await this.joins.submit({ roomId, ...participant })
  }

  /** One statement for many joins: their participant rows, the rooms' empty marks and the audit rows commit together. */
  private async writeJoins (joins: Array<ParticipantRecord & { roomId: string }>): Promise<void> {
    const rows = sql.join(joins.map((j, i) =>
      sql`(${i}::int, ${j.roomId}::uuid, ${j.userId}::text, ${timestamptz(j.joinedAt)})`), sql`, `)
    await this.guard(async () => {
      await this.db.execute(sql`
        with input (ord, room_id, user_id, joined_at) as (values ${rows}),
        added as (
          insert into room_participants (room_id, user_id, joined_at)
          select room_id, user_id, joined_at from input order by ord
          on conflict do nothing
        ), occupied as (
          update rooms set empty_since = null where id in (select room_id from input)
        )
        insert into room_events (room_id, type, actor_id) select room_id, 'joined', user_id from input order by ord`)
    })
  }

  /**
   * Removes a participant; with `hostChange` the host moves in the same transaction (compare-and-set);
   * with `emptySince` the room is marked empty from that moment (its TTL starts).
   */
  async removeParticipant (roomId: string, userId: string, options: { reason: 'left' | 'disconnected', hostChange?: HostChange, emptySince?: Date }): Promise<void> {
    const { hostChange, emptySince } = options
    if (hostChange !== undefined) {
      // The compare-and-set may find another host and must then undo the removal: a transaction.
      await this.guard(async () => await this.db.transaction(async (tx) => {
        await tx.delete(roomParticipants).where(and(eq(roomParticipants.roomId, roomId), eq(roomParticipants.userId, userId)))
        await this.audit(tx, roomId, 'left', userId, { reason: options.reason })
        await this.casHost(tx, roomId, hostChange, userId)
        if (emptySince !== undefined) await tx.update(rooms).set({ emptySince }).where(eq(rooms.id, roomId))
      }))
      return
    }
    // Otherwise one statement: the writes commit together, in one round trip.
    const markEmpty = emptySince === undefined
      ? sql``
      : sql`, emptied as (update rooms set empty_since = ${timestamptz(emptySince)} where id = ${roomId}::uuid)`
    await this.guard(async () => {
      await this.db.execute(sql`
        with removed as (
          delete from room_participants where room_id = ${roomId}::uuid and user_id = ${userId}
        )${markEmpty}
        insert into room_events (room_id, type, actor_id, data)
        values (${roomId}::uuid, 'left', ${userId}, jsonb_build_object('reason', ${options.reason}::text))`)
    })
  }

  /** Compare-and-set of the host; false (nothing changed) when the host is no longer `change.from`. */
  async transferHost (roomId: string, change: HostChange, actorId: string): Promise<boolean> {
    try {
      await this.guard(async () => await this.db.transaction(async (tx) => { await this.casHost(tx, roomId, change, actorId) }))
      return true
    } catch (err) {
      if (err instanceof HostConflictError) return false
      throw err
    }
  }

  /** Closes an active room and empties it, keeping its last playback state; false when it was not active. */
  async closeRoom (roomId: string, reason: string, actorId: string | null, playback?: StoredPlayback | null): Promise<boolean> {
    return await this.guard(async () => await this.db.transaction(async (tx) => {
      const closed = await tx.update(rooms)
        .set({ isActive: false, closedAt: sql`now()`, closeReason: reason, emptySince: null, ...(playback == null ? {} : { currentVideo: playback }) })
        .where(and(eq(rooms.id, roomId), eq(rooms.isActive, true)))
        .returning({ id: rooms.id })
      if (closed.length === 0) return false
      await tx.delete(roomParticipants).where(eq(roomParticipants.roomId, roomId))
      await this.audit(tx, roomId, 'closed', actorId, { reason })
      return true
    }))
  }

  async savePlayback (roomId: string, playback: StoredPlayback): Promise<void> {
    await this.guard(async () => {
      await this.db.update(rooms).set({ currentVideo: playback }).where(eq(rooms.id, roomId))
    })
  }

  /** The audit trail of one room, oldest first. */
  async listEvents (roomId: string): Promise<Array<{ type: RoomEventType, actorId: string | null, data: Record<string, unknown>, createdAt: Date }>> {
    return await this.guard(async () => await this.db
      .select({ type: roomEvents.type, actorId: roomEvents.actorId, data: roomEvents.data, createdAt: roomEvents.createdAt })
      .from(roomEvents).where(eq(roomEvents.roomId, roomId)).orderBy(asc(roomEvents.id)))
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
