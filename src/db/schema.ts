/**
 * The database schema. Migrations in migrations/ are generated from this file by drizzle-kit
 * (`npm run db:generate`) and committed; never edit a generated migration by hand.
 */
import { sql } from 'drizzle-orm'
import { bigint, bigserial, boolean, index, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core'

/** The host's playback state as stored; `updatedAt` is epoch ms of the server clock. */
export interface StoredPlayback {
  videoUrl: string
  currentTime: number
  isPlaying: boolean
  playbackRate: number
  updatedAt: number
}

// Millisecond precision so that a timestamp read into a JS Date compares equal when written back
// (keyset pagination depends on it).
const msTimestamp = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' })

export const rooms = pgTable('rooms', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  hostId: text('host_id').notNull(),
  isActive: boolean('is_active').notNull().default(true),
  createdAt: msTimestamp('created_at').notNull().default(sql`now()`),
  closedAt: msTimestamp('closed_at'),
  closeReason: text('close_reason'),
  /** Since when the room has had no participants; the empty-room TTL counts from here. Null while occupied. */
  emptySince: msTimestamp('empty_since').default(sql`now()`),
  currentVideo: jsonb('current_video').$type<StoredPlayback>(),
  /**
   * Names the unbroken run of this room's stream sequence (protocol 1.1). It would change only if the history
   * were lost; the stream lives in this database, so it never does.
   */
  epoch: text('epoch').notNull().default(sql`substr(md5(gen_random_uuid()::text), 1, 12)`),
  /**
   * Cluster mode: the node that serves the room and its fencing token. The token rises at every takeover;
   * every write of an owner carries the token it took the room with, and changes nothing once it is stale.
   */
  ownerNode: text('owner_node'),
  ownerToken: bigint('owner_token', { mode: 'number' }).notNull().default(0)
}, (t) => [
  index('rooms_active_created_idx').on(t.isActive, t.createdAt.desc(), t.id.desc()),
  index('rooms_host_active_idx').on(t.hostId).where(sql`${t.isActive}`)
])

/** One row per user in a room (connected or within the reconnect grace). Join order is joined_at, then seq. */
export const roomParticipants = pgTable('room_participants', {
  roomId: uuid('room_id').notNull().references(() => rooms.id, { onDelete: 'cascade' }),
  userId: text('user_id').notNull(),
  joinedAt: msTimestamp('joined_at').notNull(),
  seq: bigserial('seq', { mode: 'number' }).notNull()
}, (t) => [
  primaryKey({ columns: [t.roomId, t.userId] })
])

export const ROOM_EVENT_TYPES = ['created', 'closed', 'joined', 'left', 'host_changed'] as const
export type RoomEventType = typeof ROOM_EVENT_TYPES[number]

/** Append-only audit log of everything that changed a room's membership or host. */
export const roomEvents = pgTable('room_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  roomId: uuid('room_id').notNull().references(() => rooms.id, { onDelete: 'cascade' }),
  type: text('type').$type<RoomEventType>().notNull(),
  actorId: text('actor_id'),
  data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: msTimestamp('created_at').notNull().default(sql`now()`)
}, (t) => [
  index('room_events_room_idx').on(t.roomId, t.id)
])

/**
 * Each room's stream (protocol 1.1): its participant_joined, participant_left, host_changed, chat and
 * room_closed events with their positions. A row is written in the same statement or transaction as the
 * change it records, before anyone receives the event, so a position once handed out is never reused.
 * Pruned to the newest ROOM_HISTORY_SIZE events (and the newest CHAT_HISTORY_SIZE chat lines) per room, and
 * emptied once the room is closed.
 */
export const roomStream = pgTable('room_stream', {
  roomId: uuid('room_id').notNull().references(() => rooms.id, { onDelete: 'cascade' }),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  type: text('type').notNull(),
  /** The event's `data`, exactly as it was sent. */
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  /** The user whose request produced the event (chat: the sender), and that request's id: chat retries are answered from here. */
  actorId: text('actor_id'),
  requestId: text('request_id'),
  createdAt: msTimestamp('created_at').notNull().default(sql`now()`)
}, (t) => [
  primaryKey({ columns: [t.roomId, t.seq] })
])

export const schema = { rooms, roomParticipants, roomEvents, roomStream }
