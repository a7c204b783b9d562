/**
 * The Postgres (and PGlite) implementation of RoomStore: rooms, participants, the audit log and the rooms'
 * streams. The contract is RoomStore's (room-store.ts): a change, its audit row and its stream events commit
 * together; any failure to reach the database or to commit surfaces as ServiceUnavailableError.
 */
import { and, asc, count, desc, eq, inArray, lt, or, sql, type SQL } from 'drizzle-orm'
import { BatchWriter } from '../db/batch-writer.js'
import type { Database } from '../db/client.js'
import { roomEvents, roomParticipants, rooms, roomStream, type RoomEventType, type StoredPlayback } from '../db/schema.js'
import { AppError, FencedOutError, ServiceUnavailableError } from '../errors.js'
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

interface JoinWrite extends ParticipantRecord { roomId: string, event: StreamAppend, token: number | undefined }
interface ChatWrite { roomId: string, event: StreamAppend, token: number | undefined }
/** How a batched write went for one item. */
type ItemOutcome = 'written' | 'inactive' | 'fenced'

/**
 * The fencing token this node holds for a room (cluster mode), or undefined when writes are not fenced (one
 * process). Every write of a room carries it and changes nothing when the room's token is another.
 */
export type FenceOf = (roomId: string) => number | undefined

export class RoomRepository implements RoomStore {
  private readonly joins = new BatchWriter<JoinWrite, ItemOutcome>(async (joins) => await this.writeJoins(joins))
  private readonly chats = new BatchWriter<ChatWrite, ItemOutcome>(async (chats) => await this.writeChats(chats))

  constructor (private readonly db: Database, private readonly fenceOf: FenceOf = () => undefined) {}

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
    return outcome(roomId, await this.joins.submit({ roomId, ...participant, event, token: this.fenceOf(roomId) }))
  }

  /**
   * One statement for many joins (group commit: a join storm costs the database one commit per batch): the
   * participant rows, the rooms' empty marks, the participant_joined stream rows and the audit rows commit
   * together. Joins into a room that is no longer active write nothing and answer false.
   */
  private async writeJoins (joins: JoinWrite[]): Promise<ItemOutcome[]> {
    const rows = sql.join(joins.map((j, i) =>
      sql`(${i}::int, ${j.roomId}::uuid, ${j.userId}::text, ${timestamptz(j.joinedAt)}, ${j.event.seq}::bigint, ${jsonb(j.event.data)}, ${j.token ?? null}::bigint)`), sql`, `)
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with input (ord, room_id, user_id, joined_at, seq, data, token) as (values ${rows}),
        checked as (
          select input.*, rooms.is_active as active, (input.token is null or rooms.owner_token = input.token) as fenced_ok
          from input join rooms on rooms.id = input.room_id
        ), active as (
          select * from checked where active and fenced_ok
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
        select ord, active, fenced_ok from checked`)
      return outcomes(joins.length, rowsOf<OutcomeRow>(result))
    })
  }

  async removeParticipant (roomId: string, userId: string, change: { reason: 'left' | 'disconnected', hostChange?: HostChange, emptySince?: Date }, events: StreamAppend[]): Promise<boolean> {
    const { hostChange, emptySince } = change
    if (hostChange !== undefined) {
      // The compare-and-set may find another host and must then undo the removal: a transaction.
      try {
        await this.guard(async () => await this.db.transaction(async (tx) => {
          await this.checkFence(tx, roomId)
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
    // Otherwise one statement: the writes commit together, in one round trip, and only if a row was removed
    // (and, in cluster mode, only while this node's fencing token is the room's).
    const token = this.fenceOf(roomId)
    const markEmpty = emptySince === undefined
      ? sql``
      : sql`, emptied as (update rooms set empty_since = ${timestamptz(emptySince)} where id = ${roomId}::uuid and exists (select 1 from removed))`
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with fence as (
          select 1 from rooms where id = ${roomId}::uuid and (${token ?? null}::bigint is null or owner_token = ${token ?? null}::bigint)
        ), removed as (
          delete from room_participants where room_id = ${roomId}::uuid and user_id = ${userId} and exists (select 1 from fence) returning user_id
        )${markEmpty}, streamed as (
          insert into room_stream (room_id, seq, type, data, actor_id)
          select ${roomId}::uuid, e.seq, e.type, e.data, ${userId}::text
          from (values ${this.streamValues(events)}) as e(seq, type, data) where exists (select 1 from removed)
        )
        , audit as (
          insert into room_events (room_id, type, actor_id, data)
          select ${roomId}::uuid, 'left', ${userId}, jsonb_build_object('reason', ${change.reason}::text) where exists (select 1 from removed)
        )
        select (select count(*) from fence)::int as fenced_ok, (select count(*) from removed)::int as removed`)
      const row = rowsOf<{ fenced_ok: number, removed: number }>(result)[0]
      if (Number(row?.fenced_ok ?? 0) === 0) throw new FencedOutError(roomId)
      return Number(row?.removed ?? 0) > 0
    })
  }

  async transferHost (roomId: string, change: HostChange, actorId: string, event: StreamAppend): Promise<boolean> {
    try {
      await this.guard(async () => await this.db.transaction(async (tx) => {
        await this.checkFence(tx, roomId)
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
      await this.checkFence(tx, roomId)
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
    return outcome(roomId, await this.chats.submit({ roomId, event, token: this.fenceOf(roomId) }))
  }

  /** One statement for many chat lines (group commit), each only into a room that is still active. */
  private async writeChats (chats: ChatWrite[]): Promise<ItemOutcome[]> {
    const rows = sql.join(chats.map((c, i) =>
      sql`(${i}::int, ${c.roomId}::uuid, ${c.event.seq}::bigint, ${c.event.type}::text, ${jsonb(c.event.data)}, ${c.event.actorId ?? null}::text, ${c.event.requestId ?? null}::text, ${c.token ?? null}::bigint)`), sql`, `)
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        with input (ord, room_id, seq, type, data, actor_id, request_id, token) as (values ${rows}),
        checked as (
          select input.*, rooms.is_active as active, (input.token is null or rooms.owner_token = input.token) as fenced_ok
          from input join rooms on rooms.id = input.room_id
        ), streamed as (
          insert into room_stream (room_id, seq, type, data, actor_id, request_id)
          select room_id, seq, type, data, actor_id, request_id from checked where active and fenced_ok order by ord
        )
        select ord, active, fenced_ok from checked`)
      return outcomes(chats.length, rowsOf<OutcomeRow>(result))
    })
  }

  async savePlayback (roomId: string, playback: StoredPlayback): Promise<void> {
    const token = this.fenceOf(roomId)
    await this.guard(async () => {
      await this.db.update(rooms).set({ currentVideo: playback })
        .where(token === undefined ? eq(rooms.id, roomId) : and(eq(rooms.id, roomId), eq(rooms.ownerToken, token)))
    })
  }

  /**
   * Cluster mode: takes the room for `nodeId` with the next fencing token (a takeover), and answers it; null
   * when the room is not active. Called by the lease holder right after it won the room's lease.
   */
  async claimRoom (roomId: string, nodeId: string): Promise<number | null> {
    return await this.guard(async () => {
      const [row] = await this.db.update(rooms).set({ ownerNode: nodeId, ownerToken: sql`${rooms.ownerToken} + 1` })
        .where(and(eq(rooms.id, roomId), eq(rooms.isActive, true)))
        .returning({ token: rooms.ownerToken })
      return row === undefined ? null : Number(row.token)
    })
  }

  /** Cluster mode: the open rooms and the node each was last claimed by (the sweeper's view). */
  async listOwners (): Promise<Array<{ id: string, ownerNode: string | null }>> {
    return await this.guard(async () => await this.db.select({ id: rooms.id, ownerNode: rooms.ownerNode }).from(rooms).where(eq(rooms.isActive, true)))
  }

  /** Cluster mode: the newest seq of each of these rooms (the edges' periodic position check). */
  async lastSeqs (roomIds: string[]): Promise<Map<string, number>> {
    if (roomIds.length === 0) return new Map()
    return await this.guard(async () => {
      const result = await this.db.execute(sql`
        select s.room_id, max(s.seq) as seq from room_stream s where s.room_id in (${sql.join(roomIds.map((id) => sql`${id}::uuid`), sql`, `)}) group by s.room_id`)
      return new Map(rowsOf<{ room_id: string, seq: number | string }>(result).map((r) => [r.room_id, Number(r.seq)]))
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

  /** Inside a transaction: the room's row locked, and FencedOutError unless this node's token is the room's. */
  private async checkFence (tx: Tx, roomId: string): Promise<void> {
    const token = this.fenceOf(roomId)
    if (token === undefined) return
    const held = await tx.execute(sql`select 1 from rooms where id = ${roomId}::uuid and owner_token = ${token}::bigint for update`)
    if (rowsOf(held).length === 0) throw new FencedOutError(roomId)
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

interface OutcomeRow { ord: number | string, active: boolean, fenced_ok: boolean }

/** One outcome per item of a batch, from the rows its statement returned (an item without a row: no room). */
function outcomes (count: number, rows: OutcomeRow[]): ItemOutcome[] {
  const result: ItemOutcome[] = Array.from({ length: count }, () => 'inactive')
  for (const row of rows) result[Number(row.ord)] = !row.fenced_ok ? 'fenced' : row.active ? 'written' : 'inactive'
  return result
}

/** A batched item's outcome as RoomStore answers it: written or not; fenced out throws. */
function outcome (roomId: string, item: ItemOutcome): boolean {
  if (item === 'fenced') throw new FencedOutError(roomId)
  return item === 'written'
}

const streamColumns = {
  seq: roomStream.seq,
  type: roomStream.type,
  data: roomStream.data,
  actorId: roomStream.actorId,
  requestId: roomStream.requestId,
  createdAt: roomStream.createdAt
}
