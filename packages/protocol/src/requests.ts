/**
 * What a client sends: `{type, id?, data}`, one JSON text frame each. Every request with an `id` gets exactly
 * one reply carrying `replyTo` equal to it (its success event, or `error`).
 */
import { Type, type Static, type TSchema } from 'typebox'
import { CurrentTime, PlaybackRate, RoomName, UserId, VideoUrl, type StaticOf } from './shapes.js'

/** Room ids are checked by the server so that a non-UUID answers INVALID_ROOM_ID rather than VALIDATION_FAILED. */
const RoomIdField = Type.String({ maxLength: 100, description: 'The room id (UUID); anything else answers INVALID_ROOM_ID.' })
export const ChatMessage = Type.String({ minLength: 1, maxLength: 2000 })
export const ChatId = Type.String({ minLength: 1, maxLength: 300, description: '`sync-<userA>--<userB>`; the sender must be one of the two.' })
/** A position in a room's stream: the `seq` of the last stream event a client has, in `epoch`. */
export const StreamPosition = Type.Object({
  epoch: Type.String({ minLength: 1, maxLength: 64 }),
  seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })
}, { description: 'Catch up from this position: when recovered is true, the missed stream events follow room_joined.' })

export const RequestEnvelope = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 64 }),
  id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The request\'s data; may be omitted when it is empty.' }))
})
export type RequestEnvelope = Static<typeof RequestEnvelope>

/** The data of each request, by the handler that serves it (`legacy_*` are the deprecated forms of sync and chat). */
export const RequestData = {
  create_room: Type.Object({ roomName: RoomName }),
  join_room: Type.Object({
    roomId: RoomIdField,
    since: Type.Optional(StreamPosition)
  }),
  leave_room: Type.Object({ roomId: RoomIdField }),
  host_sync: Type.Object({
    roomId: RoomIdField,
    videoUrl: VideoUrl,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    playbackRate: Type.Optional(PlaybackRate),
    at: Type.Optional(Type.Number({ minimum: 0, maximum: 1e15, description: 'The host\'s estimate of the server clock (epoch ms) when currentTime was sampled; clamped to the last 5 s and never in the future.' }))
  }),
  transfer_host: Type.Object({ roomId: RoomIdField, newHostId: UserId }),
  chat: Type.Object({ roomId: RoomIdField, message: ChatMessage }),
  ping: Type.Object({ clientTime: Type.Optional(Type.Number()) }),
  auth: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }),
  playback_report: Type.Object({
    roomId: RoomIdField,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    buffering: Type.Optional(Type.Boolean()),
    at: Type.Number({ minimum: 0, maximum: 1e15, description: 'The viewer\'s estimate of the server clock (epoch ms) when currentTime was sampled.' })
  }),
  legacy_sync: Type.Object({
    chatId: ChatId,
    videoUrl: VideoUrl,
    currentTime: CurrentTime,
    isPlaying: Type.Boolean(),
    playbackRate: Type.Optional(PlaybackRate)
  }),
  legacy_chat: Type.Object({ chatId: ChatId, message: ChatMessage })
} as const satisfies Record<string, TSchema>

export type RequestKey = keyof typeof RequestData
export type RequestDataOf<K extends RequestKey> = StaticOf<(typeof RequestData)[K]>

/** The `type`s a client may send; `sync` and `chat` with `data.chatId` are the deprecated 1-on-1 forms. */
export const REQUEST_TYPES = ['create_room', 'join_room', 'leave_room', 'host_sync', 'transfer_host', 'chat', 'ping', 'auth', 'playback_report', 'sync'] as const
export type RequestType = typeof REQUEST_TYPES[number]

/** A request as a client builds it: `data` typed by `type`. */
export type ClientRequestOf<K extends Exclude<RequestType, 'sync'>> = { type: K, id?: string, data: RequestDataOf<K> }
