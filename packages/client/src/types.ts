/**
 * The typed surface of the wire contract as the client uses it: which reply answers which request, and the
 * shapes rooms expose. Everything here is derived from @watch-party/protocol's types (no runtime import).
 */
import type {
  EventDataOf,
  RequestDataOf,
  RequestKey,
  ServerEventOf,
  StreamEventType,
  SyncData
} from '@watch-party/protocol'

/** The success reply of each request type (any request may instead be answered with `error`). */
export interface ReplyTypes {
  create_room: 'room_created'
  join_room: 'room_joined'
  leave_room: 'room_left'
  host_sync: 'ack'
  transfer_host: 'host_changed'
  chat: 'chat'
  ping: 'pong'
  auth: 'ack'
  playback_report: 'ack'
}

/** The request types the client sends (every one but the deprecated 1-on-1 `sync` / `chat` with chatId). */
export type RequestType = keyof ReplyTypes & RequestKey
export type RequestData<K extends RequestType> = RequestDataOf<K>
export type Reply<K extends RequestType> = ServerEventOf<ReplyTypes[K]>

/** Every current request type has a reply here (a new request in the protocol fails to compile until it does). */
type MissingReplies = Exclude<RequestKey, RequestType | 'legacy_sync' | 'legacy_chat'>
const noMissingReplies: MissingReplies extends never ? true : MissingReplies = true
void noMissingReplies

/** The success replies, by request type, as values (to check a reply's type). */
export const REPLY_TYPES: ReplyTypes = {
  create_room: 'room_created',
  join_room: 'room_joined',
  leave_room: 'room_left',
  host_sync: 'ack',
  transfer_host: 'host_changed',
  chat: 'chat',
  ping: 'pong',
  auth: 'ack',
  playback_report: 'ack'
}

export type StreamPosition = { epoch: string, seq: number }

/** A chat line of a room, with its position when the server gives positions. */
export type ChatLine = EventDataOf<'chat'> & { seq?: number }
/** The host's playback state: `currentTime` was true at `updatedAt` (server clock, epoch ms). */
export type PlaybackState = SyncData
export type ViewerStatusRow = EventDataOf<'viewer_status'>['viewers'][number]
export type StreamEventTypeName = StreamEventType
