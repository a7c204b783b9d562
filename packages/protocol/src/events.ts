/**
 * What the server sends: `{type, replyTo?, channel?, seq?, epoch?, data}`, one JSON text frame each.
 *
 * Contract (protocol 1.1, positions): the stream events of a room (STREAM_EVENT_TYPES on a `room-<id>`
 * channel) carry `seq` (1 for the room's first, then +1 each, no gaps) and `epoch`; no other frame carries
 * them. `room_created` and `room_joined` carry the position of the snapshot they hold in `data.seq` and
 * `data.epoch`. `sync` is state, not stream: it has no position.
 */
import { Type, type TSchema } from 'typebox'
import { ChatId, ChatMessage } from './requests.js'
import { CurrentTime, PlaybackRate, ServerTime, UserId, VideoUrl, type StaticOf } from './shapes.js'

export const PROTOCOL_VERSION = 1

/** What `connected.data.features` may list (those that are on). */
export const FEATURES = ['positions', 'catch_up', 'chat_history', 'viewer_reports', 'cluster'] as const
export type Feature = typeof FEATURES[number]

/** A room's channel name as carried in `channel`. */
export const roomChannel = (roomId: string): string => `room-${roomId}`
/** The room id of a `room-<id>` channel, or undefined for any other channel. */
export const roomIdOfChannel = (channel: string): string | undefined => channel.startsWith('room-') ? channel.slice(5) : undefined

/** The events that enter a room's stream, with a position, in the order the room produced them. */
export const STREAM_EVENT_TYPES = ['participant_joined', 'participant_left', 'host_changed', 'chat', 'room_closed'] as const
export type StreamEventType = typeof STREAM_EVENT_TYPES[number]
const STREAM_TYPES: ReadonlySet<string> = new Set(STREAM_EVENT_TYPES)
export const isStreamEventType = (type: string): type is StreamEventType => STREAM_TYPES.has(type)

const Role = Type.Union([Type.Literal('host'), Type.Literal('viewer')])
const Seq = Type.Integer({ minimum: 1, description: 'Position in the room\'s stream: 1 for its first event, then +1 each.' })
const SnapshotSeq = Type.Integer({ minimum: 0, description: 'The seq of the last stream event this snapshot includes (0 if none yet).' })
const Epoch = Type.String({ minLength: 1, description: 'Names one unbroken run of the room\'s sequence; a new epoch means: rebuild from a snapshot.' })

export const HostChangedData = Type.Object({
  roomId: Type.String(),
  hostId: UserId,
  previousHostId: UserId,
  reason: Type.Union([Type.Literal('transfer'), Type.Literal('host_left'), Type.Literal('host_disconnected')])
})
export const ChatEventData = Type.Object({
  roomId: Type.Optional(Type.String({ description: 'Room chat.' })),
  chatId: Type.Optional(ChatId),
  id: Type.String({ format: 'uuid' }),
  userId: UserId,
  message: ChatMessage,
  sentAt: Type.String({ format: 'date-time' })
})
/** A room chat line as kept in the chat history: the whole event as it was broadcast. */
export const ChatStreamEvent = Type.Object({
  type: Type.Literal('chat'),
  channel: Type.String(),
  seq: Seq,
  epoch: Epoch,
  data: ChatEventData
})
const ChatHistory = Type.Array(ChatStreamEvent, { description: 'The room\'s last CHAT_HISTORY_SIZE (default 50) chat events, oldest first.' })

export const ViewerStatusRow = Type.Object({
  userId: UserId,
  drift: Type.Union([Type.Number(), Type.Null()], { description: 'Seconds; positive: the viewer is ahead of the host. Null while the room has no playback state.' }),
  buffering: Type.Boolean(),
  at: ServerTime
})

/** Every event the server sends, by type: what the AsyncAPI document lists and tests check frames against. */
export const EventData = {
  connected: Type.Object({
    userId: UserId,
    connectionId: Type.String(),
    serverTime: ServerTime,
    protocolVersion: Type.Literal(PROTOCOL_VERSION),
    heartbeatMs: Type.Integer({ description: 'The server pings this often; a connection that misses a pong is terminated.' }),
    features: Type.Array(Type.Enum(FEATURES), { description: 'The 1.1 features this server has on.' })
  }),
  room_created: Type.Object({ room: Type.Ref('Room'), role: Type.Literal('host'), serverTime: ServerTime, seq: SnapshotSeq, epoch: Epoch, chat: ChatHistory }),
  room_joined: Type.Object({
    room: Type.Ref('Room'),
    role: Role,
    serverTime: ServerTime,
    seq: SnapshotSeq,
    epoch: Epoch,
    chat: ChatHistory,
    recovered: Type.Optional(Type.Boolean({ description: 'Only when join_room had `since`: true when the missed events follow at once, in order; false when the snapshot is all.' }))
  }),
  room_left: Type.Object({ roomId: Type.String() }),
  participant_joined: Type.Object({ roomId: Type.String(), userId: UserId }),
  participant_left: Type.Object({ roomId: Type.String(), userId: UserId }),
  sync: Type.Union([Type.Ref('SyncData'), Type.Object({
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
  pong: Type.Object({ clientTime: Type.Union([Type.Number(), Type.Null()]), serverTime: Type.Number({ description: 'Server clock, epoch ms, with sub-millisecond precision.' }) }),
  room_closed: Type.Object({ roomId: Type.String(), reason: Type.Union([Type.Literal('deleted'), Type.Literal('empty')]) }),
  viewer_status: Type.Object({ roomId: Type.String(), viewers: Type.Array(ViewerStatusRow) }),
  warning: Type.Object({ code: Type.Literal('DEPRECATED'), message: Type.String() }),
  error: Type.Ref('ErrorResponse')
} as const satisfies Record<string, TSchema>

export type EventType = keyof typeof EventData
export type EventDataOf<K extends EventType> = StaticOf<(typeof EventData)[K]>

/** A frame from the server, discriminated on `type`. */
export type ServerEvent = {
  [K in EventType]: {
    type: K
    replyTo?: string
    channel?: string
    seq?: number
    epoch?: string
    data: EventDataOf<K>
  }
}[EventType]
export type ServerEventOf<K extends EventType> = Extract<ServerEvent, { type: K }>
/** A stream event of a room: it always has its position. */
export type StreamEvent = Extract<ServerEvent, { type: StreamEventType }> & { channel: string, seq: number, epoch: string }
export type ChatStreamEventData = StaticOf<typeof ChatStreamEvent>
export type ViewerStatus = StaticOf<typeof ViewerStatusRow>

