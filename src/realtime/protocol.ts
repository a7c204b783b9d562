/**
 * The WebSocket wire protocol of shared/protocol.md, version 1: request and event schemas (TypeBox, the one
 * source for validation, types and the AsyncAPI document) and the close codes.
 */
import { Type, type Static, type TSchema } from 'typebox'
import { CurrentTime, PlaybackRate, RoomName, UserId, VideoUrl } from '../rooms/shapes.js'

export const PROTOCOL_VERSION = 1
/** Frames above this size close the connection with 1009 (enforced by ws before parsing). */
export const MAX_FRAME_BYTES = 64 * 1024

/**
 * Why the server closes a connection. Clients reconnect (with jittered backoff) after 1012 and after a
 * heartbeat termination (1006) and after 1013 (the identity provider's keys could not be fetched); after 4401
 * only with a fresh token; after 1003/1009/4429 only once fixed.
 */
export const CLOSE_CODES = {
  UNSUPPORTED_DATA: 1003,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  FLOODING: 4429
} as const

/** A room's channel name as carried in `channel`. */
export const roomChannel = (roomId: string): string => `room-${roomId}`
/** The internal channel that reaches every connection of one user (legacy relay). */
export const userChannel = (userId: string): string => `user:${userId}`

/** Room ids are checked by the room service so that a non-UUID answers INVALID_ROOM_ID. */
const RoomIdField = Type.String({ maxLength: 100, description: 'The room id (UUID); anything else answers INVALID_ROOM_ID.' })
const ChatMessage = Type.String({ minLength: 1, maxLength: 2000 })
export const ChatId = Type.String({ minLength: 1, maxLength: 300, description: '`sync-<userA>--<userB>`; the sender must be one of the two.' })

export const RequestEnvelope = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 64 }),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The request\'s data; may be omitted when it is empty.' }))
})
export type RequestEnvelope = Static<typeof RequestEnvelope>

export const RequestData = {
  create_room: Type.Object({ roomName: RoomName }),
  join_room: Type.Object({ roomId: RoomIdField }),
  leave_room: Type.Object({ roomId: RoomIdField }),
  host_sync: Type.Object({
    roomId: RoomIdField,
    videoUrl: VideoUrl,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    playbackRate: Type.Optional(PlaybackRate)
  }),
  transfer_host: Type.Object({ roomId: RoomIdField, newHostId: UserId }),
  chat: Type.Object({ roomId: RoomIdField, message: ChatMessage }),
  ping: Type.Object({ clientTime: Type.Optional(Type.Number()) }),
  auth: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }),
  /** Deprecated 1-on-1 forms. */
  legacy_sync: Type.Object({
    chatId: ChatId,
    videoUrl: VideoUrl,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    playbackRate: Type.Optional(PlaybackRate)
  }),
  legacy_chat: Type.Object({ chatId: ChatId, message: ChatMessage })
} as const satisfies Record<string, TSchema>

export type RequestDataOf<K extends keyof typeof RequestData> = Static<(typeof RequestData)[K]>

const Role = Type.Union([Type.Literal('host'), Type.Literal('viewer')])
const RoomRef = Type.Ref('Room')
const SyncDataRef = Type.Ref('SyncData')
const HostChangedData = Type.Object({
  roomId: Type.String(),
  hostId: UserId,
  previousHostId: UserId,
  reason: Type.Union([Type.Literal('transfer'), Type.Literal('host_left'), Type.Literal('host_disconnected')])
})
const ChatEventData = Type.Object({
  roomId: Type.Optional(Type.String({ description: 'Room chat.' })),
  chatId: Type.Optional(ChatId),
  id: Type.String({ format: 'uuid' }),
  userId: UserId,
  message: ChatMessage,
  sentAt: Type.String({ format: 'date-time' })
})

/** Every event the server sends, by type: what the AsyncAPI document lists and tests check against. */
export const EventData = {
  connected: Type.Object({
    userId: UserId,
    connectionId: Type.String(),
    serverTime: Type.Number({ description: 'Epoch ms.' }),
    protocolVersion: Type.Literal(PROTOCOL_VERSION),
    heartbeatMs: Type.Integer({ description: 'The server pings this often; a connection that misses a pong is terminated.' })
  }),
  room_created: Type.Object({ room: RoomRef, role: Type.Literal('host'), serverTime: Type.Number() }),
  room_joined: Type.Object({ room: RoomRef, role: Role, serverTime: Type.Number() }),
  room_left: Type.Object({ roomId: Type.String() }),
  participant_joined: Type.Object({ roomId: Type.String(), userId: UserId }),
  participant_left: Type.Object({ roomId: Type.String(), userId: UserId }),
  sync: Type.Union([SyncDataRef, Type.Object({
    chatId: ChatId,
    videoUrl: VideoUrl,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    playbackRate: PlaybackRate,
    updatedAt: Type.Number()
  }, { description: 'Legacy 1-on-1 relay (channel is the chatId).' })]),
  ack: Type.Object({}),
  host_changed: HostChangedData,
  chat: ChatEventData,
  pong: Type.Object({ clientTime: Type.Union([Type.Number(), Type.Null()]), serverTime: Type.Number() }),
  room_closed: Type.Object({ roomId: Type.String(), reason: Type.Union([Type.Literal('deleted'), Type.Literal('empty')]) }),
  warning: Type.Object({ code: Type.Literal('DEPRECATED'), message: Type.String() }),
  error: Type.Ref('ErrorResponse')
} as const satisfies Record<string, TSchema>

export type EventType = keyof typeof EventData

/** What goes over the wire from the server. */
export interface ServerEvent {
  type: EventType
  replyTo?: string
  channel?: string
  data: object
}
