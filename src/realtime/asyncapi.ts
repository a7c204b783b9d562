/**
 * The AsyncAPI 3 document of the WebSocket (`GET /asyncapi.json`), generated from the same TypeBox schemas
 * that validate requests (RequestData) and describe events (EventData), so docs and code cannot drift.
 */
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import { SHARED_SCHEMAS } from '../rooms/shapes.js'
import { CLOSE_CODES, EventData, isStreamEventType, MAX_FRAME_BYTES, RequestData, STREAM_EVENT_TYPES } from './protocol.js'

const REQUESTS: Record<string, { schema: TSchema, summary: string }> = {
  create_room: { schema: RequestData.create_room, summary: 'Create a room; the connection joins it as host. Reply: room_created.' },
  join_room: { schema: RequestData.join_room, summary: 'Join a room (idempotent). Reply: room_joined (with the chat history and the snapshot\'s seq/epoch); others get participant_joined. With since {epoch, seq}: recovered true and the missed stream events right after the reply, or recovered false and the snapshot only.' },
  leave_room: { schema: RequestData.leave_room, summary: 'Leave a room (member). Reply: room_left; others get participant_left, then host_changed if the host left.' },
  host_sync: { schema: RequestData.host_sync, summary: 'Host only: new playback state (at: the host\'s estimate of the server clock when currentTime was sampled). Reply: ack; others get sync.' },
  transfer_host: { schema: RequestData.transfer_host, summary: 'Host only: hand over to a participant. Reply and broadcast: host_changed.' },
  chat: { schema: RequestData.chat, summary: 'Member: a chat line. Everyone, the sender included, gets chat. Deprecated form: data.chatId instead of roomId.' },
  ping: { schema: RequestData.ping, summary: 'Reply: pong, serverTime with sub-millisecond precision (clock sync: keep the samples with the least round trip).' },
  playback_report: { schema: RequestData.playback_report, summary: 'Member: where its player is (at: its estimate of the server clock). Reply: ack. The host\'s connections get viewer_status.' },
  auth: { schema: RequestData.auth, summary: 'JWT mode: replace the token before it expires (same sub). Reply: ack.' },
  sync: { schema: RequestData.legacy_sync, summary: 'Deprecated 1-on-1 relay (chatId "sync-<a>--<b>"); with roomId instead of chatId it is host_sync. Reply: ack, and a DEPRECATED warning once per connection.' }
}

const EVENT_SUMMARIES: Record<keyof typeof EventData, string> = {
  connected: 'First frame of every connection.',
  room_created: 'Reply to create_room.',
  room_joined: 'Reply to join_room; currentVideo is extrapolated to now so a late joiner can start at once.',
  room_left: 'Reply to leave_room.',
  participant_joined: 'A user joined the room (not sent for a rejoin within the reconnect grace).',
  participant_left: 'A user left, or their reconnect grace expired.',
  sync: 'The host\'s playback state (room channel), or a legacy 1-on-1 relay (channel is the chatId).',
  ack: 'Reply to host_sync, auth and legacy sync.',
  host_changed: 'The host changed: reason transfer, host_left or host_disconnected.',
  chat: 'A chat line.',
  pong: 'Reply to ping.',
  room_closed: 'The room was closed (deleted by its host, or empty for EMPTY_ROOM_TTL_MS).',
  viewer_status: 'To the host\'s connections, at most once a second while it changes: each viewer\'s drift against the host\'s state at the report\'s time, and whether it buffers.',
  warning: 'Non-fatal notice, e.g. DEPRECATED once per connection for legacy channels.',
  error: 'A request was refused; the connection stays open. data is an ErrorResponse.'
}

export function buildAsyncApiDocument (version: string): Record<string, unknown> {
  const messages: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const channelMessages: Record<string, unknown> = {}

  for (const [type, { schema, summary }] of Object.entries(REQUESTS)) {
    const name = `request_${type}`
    messages[name] = {
      name,
      title: type,
      summary,
      payload: envelope(type, schema, { id: { type: 'string', minLength: 1, maxLength: 64, description: 'Echoed as replyTo on the one reply.' } })
    }
    channelMessages[name] = { $ref: `#/components/messages/${name}` }
    operations[`receive_${type}`] = { action: 'receive', channel: { $ref: '#/channels/ws' }, messages: [{ $ref: `#/channels/ws/messages/${name}` }], summary }
  }
  for (const [type, schema] of Object.entries(EventData)) {
    const name = `event_${type}`
    const summary = EVENT_SUMMARIES[type as keyof typeof EventData]
    messages[name] = {
      name,
      title: type,
      summary,
      payload: envelope(type, schema, {
        replyTo: { type: 'string', description: 'The id of the request this answers.' },
        channel: { type: 'string', description: 'room-<roomId> for room events; the chatId for legacy relays.' },
        ...(isStreamEventType(type)
          ? {
              seq: { type: 'integer', minimum: 1, description: 'Stream events of a room: the position (1 for its first, +1 each, no gaps).' },
              epoch: { type: 'string', description: 'Stream events of a room: the run of the sequence; a new one means rebuild from a snapshot.' }
            }
          : {})
      })
    }
    channelMessages[name] = { $ref: `#/components/messages/${name}` }
    operations[`send_${type}`] = { action: 'send', channel: { $ref: '#/channels/ws' }, messages: [{ $ref: `#/channels/ws/messages/${name}` }], summary }
  }

  const schemas: Record<string, unknown> = {}
  for (const shared of SHARED_SCHEMAS) {
    const { $id, ...rest } = plain(shared) as { $id: string }
    schemas[$id] = rest
  }

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Watch-party WebSocket',
      version,
      description: 'Text frames, one JSON object each. Client to server: {type, id?, data}. Server to client: ' +
        '{type, replyTo?, channel?, seq?, epoch?, data}. Every request with an id gets exactly one reply (its success event or error). ' +
        `Stream events of a room (${STREAM_EVENT_TYPES.join(', ')}) carry seq and epoch; sync carries none. ` +
        `Close codes: ${CLOSE_CODES.UNSUPPORTED_DATA} binary frame, ${CLOSE_CODES.MESSAGE_TOO_BIG} frame over ${MAX_FRAME_BYTES} bytes, ` +
        `${CLOSE_CODES.SERVICE_RESTART} server restart (reconnect at once with jitter, rejoin with since), ${CLOSE_CODES.TRY_AGAIN_LATER} try again later ` +
        `(a connection cap, the connect rate, or an unreachable identity provider: reconnect with backoff), ${CLOSE_CODES.UNAUTHORIZED} bad or expired token, ` +
        `${CLOSE_CODES.FLOODING} sustained flooding.`
    },
    defaultContentType: 'application/json',
    servers: {
      server: {
        host: '{host}',
        protocol: 'ws',
        pathname: '/ws',
        description: 'The server that serves this document (wss behind TLS). Identity: ?userId= (development mode) or ?token= / Authorization: Bearer (JWT mode).',
        variables: { host: { default: 'localhost:3000', description: 'host[:port] of the server; PORT defaults to 3000.' } }
      }
    },
    channels: { ws: { address: '/ws', title: 'The WebSocket', messages: channelMessages } },
    operations,
    components: { messages, schemas }
  }
}

export function registerAsyncApi (app: FastifyInstance, version: string): void {
  const document = buildAsyncApiDocument(version)
  app.get('/asyncapi.json', { schema: { hide: true } }, async () => document)
}

function envelope (type: string, data: TSchema, extra: Record<string, unknown>): unknown {
  return {
    type: 'object',
    required: ['type', 'data'],
    properties: { type: { type: 'string', const: type }, ...extra, data: plain(data) }
  }
}

/** A TypeBox schema as plain JSON Schema, with references to shared shapes pointing into components. */
function plain (schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema), (key, value: unknown) =>
    key === '$ref' && typeof value === 'string' && !value.startsWith('#') ? `#/components/schemas/${value}` : value)
}
