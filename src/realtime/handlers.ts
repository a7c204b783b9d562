/**
 * Request dispatch: one table entry per request type, each declaring its data schema (from the protocol
 * package) and the permission it needs. The table `satisfies` a record keyed by every request key, so a
 * request without a handler does not compile. Validation and the permission check run before any handler;
 * the room host checks the permission again inside the room's queue, where it is atomic with the change.
 */
import { Compile, type Validator } from 'typebox/compile'
import type { Static, TSchema } from 'typebox'
import { AppError } from '../errors.js'
import type { IdentityResolver, Identity } from '../http/identity.js'
import type { RoomHost } from '../rooms/room-host.js'
import type { Actor, Permission, Responder, RoomEvent } from '../rooms/room-ports.js'
import type { ClientConnection, ClientRequest } from './connection.js'
import type { LegacyRelay } from './legacy.js'
import { REQUEST_TYPES, RequestData, roomChannel, type RequestKey } from './protocol.js'

export interface HandlerContext extends Responder {
  connection: ClientConnection
  actor: Actor
  /** The request's id, when it had one. */
  requestId: string | undefined
  /** Answers the request: adds replyTo, and the room's channel unless `channel` names another. */
  reply (event: RoomEvent, channel?: string): void
}

/** The room operations a request may call: the room host itself, or (cluster mode) the router in front of it. */
export type RoomOps = Pick<RoomHost, 'refusal' | 'createAndJoin' | 'join' | 'leave' | 'hostSync' | 'transferHost' | 'chat' | 'playbackReport' | 'disconnect'>

export interface HandlerDeps {
  rooms: RoomOps
  identity: IdentityResolver
  legacy: LegacyRelay
  /** The server clock with sub-millisecond precision (epoch ms), for pong. */
  preciseNow: () => number
  /** A refreshed token was accepted for this connection. */
  onTokenRefreshed (connection: ClientConnection, identity: Identity): void
  /** A legacy form was used (logged and counted; warned once per connection). */
  onLegacyUse (connection: ClientConnection, type: string): void
}

interface Handler<S extends TSchema> {
  data: S
  permission: Permission
  /** The room whose permission is checked before dispatch. */
  roomOf?: (data: Static<S>) => string
  run (ctx: HandlerContext, data: Static<S>, deps: HandlerDeps): Promise<void> | void
}

// Identity function that keeps each entry's data type tied to its schema.
const handler = <S extends TSchema>(h: Handler<S>): Handler<S> => h

export const HANDLERS = {
  create_room: handler({
    data: RequestData.create_room,
    permission: 'anyone',
    run: async (ctx, data, { rooms }) => { await rooms.createAndJoin(ctx.actor, data.roomName, ctx) }
  }),
  join_room: handler({
    data: RequestData.join_room,
    permission: 'anyone',
    run: async (ctx, data, { rooms }) => { await rooms.join(ctx.actor, data.roomId, data.since, ctx) }
  }),
  leave_room: handler({
    data: RequestData.leave_room,
    permission: 'member',
    roomOf: (data) => data.roomId,
    run: async (ctx, data, { rooms }) => { await rooms.leave(ctx.actor, data.roomId, ctx) }
  }),
  host_sync: handler({
    data: RequestData.host_sync,
    permission: 'host',
    roomOf: (data) => data.roomId,
    run: async (ctx, data, { rooms }) => { await rooms.hostSync(ctx.actor, data.roomId, data, ctx) }
  }),
  transfer_host: handler({
    data: RequestData.transfer_host,
    permission: 'host',
    roomOf: (data) => data.roomId,
    run: async (ctx, data, { rooms }) => { await rooms.transferHost(ctx.actor, data.roomId, data.newHostId, ctx) }
  }),
  chat: handler({
    data: RequestData.chat,
    permission: 'member',
    roomOf: (data) => data.roomId,
    run: async (ctx, data, { rooms }) => { await rooms.chat(ctx.actor, data.roomId, data.message, ctx.requestId, ctx) }
  }),
  playback_report: handler({
    data: RequestData.playback_report,
    permission: 'member',
    roomOf: (data) => data.roomId,
    run: async (ctx, data, { rooms }) => { await rooms.playbackReport(ctx.actor, data.roomId, data, ctx) }
  }),
  ping: handler({
    data: RequestData.ping,
    permission: 'anyone',
    run: (ctx, data, { preciseNow }) => { ctx.reply({ type: 'pong', data: { clientTime: data.clientTime ?? null, serverTime: preciseNow() } }) }
  }),
  auth: handler({
    data: RequestData.auth,
    permission: 'anyone',
    run: async (ctx, data, { identity, onTokenRefreshed }) => {
      const refreshed = await identity.verifyToken(data.token)
      if (refreshed.userId !== ctx.actor.userId) {
        throw new AppError('UNAUTHORIZED', 'a refreshed token must be for the same user (sub) as the connection')
      }
      onTokenRefreshed(ctx.connection, refreshed)
      ctx.reply({ type: 'ack', data: {} })
    }
  }),
  legacy_sync: handler({
    data: RequestData.legacy_sync,
    permission: 'anyone',
    run: (ctx, data, { legacy }) => {
      legacy.sync(ctx.actor.userId, data)
      ctx.reply({ type: 'ack', data: {} })
    }
  }),
  legacy_chat: handler({
    data: RequestData.legacy_chat,
    permission: 'anyone',
    run: (ctx, data, { legacy }) => {
      const event = legacy.chat(ctx.actor.userId, ctx.actor.connectionId, data)
      ctx.reply(event, event.channel)
    }
  })
} satisfies Record<RequestKey, Handler<TSchema>>

export { REQUEST_TYPES }

const validators = new Map<RequestKey, Validator>(
  (Object.keys(HANDLERS) as RequestKey[]).map((key) => [key, Compile(HANDLERS[key].data as TSchema)])
)

/** Which table entry serves a request; the deprecated forms of `sync` and `chat` are recognized by their data. */
function route (request: ClientRequest): { key: RequestKey, deprecated: boolean } | undefined {
  switch (request.type) {
    case 'sync':
      return { key: 'chatId' in request.data ? 'legacy_sync' : 'host_sync', deprecated: true }
    case 'chat':
      return 'chatId' in request.data ? { key: 'legacy_chat', deprecated: true } : { key: 'chat', deprecated: false }
    case 'legacy_sync':
    case 'legacy_chat':
      return undefined
    default:
      return Object.hasOwn(HANDLERS, request.type) ? { key: request.type as RequestKey, deprecated: false } : undefined
  }
}

export async function dispatch (connection: ClientConnection, request: ClientRequest, deps: HandlerDeps): Promise<void> {
  const target = route(request)
  if (target === undefined) throw new AppError('UNKNOWN_EVENT', `unknown request type ${JSON.stringify(request.type)}`)
  const entry = HANDLERS[target.key] as Handler<TSchema>
  const validator = validators.get(target.key)
  if (validator !== undefined && !validator.Check(request.data)) {
    const first = validator.Errors(request.data)[0]
    const where = first === undefined ? '' : `: data${first.instancePath} ${first.message}`
    throw new AppError('VALIDATION_FAILED', `invalid ${request.type} request${where}`)
  }
  if (target.deprecated) deps.onLegacyUse(connection, request.type)
  const actor: Actor = { connectionId: connection.id, userId: connection.userId }
  if (entry.roomOf !== undefined) {
    const refusal = deps.rooms.refusal(entry.roomOf(request.data), actor, entry.permission)
    if (refusal !== undefined) throw refusal
  }
  const ctx: HandlerContext = {
    connection,
    actor,
    requestId: request.id,
    reply: (event, channel) => { connection.reply(request, event, channel ?? channelOf(event)) },
    send: (event) => { connection.send(event) }
  }
  await entry.run(ctx, request.data, deps)
}

/** Room events carry their room's channel; replies without a room (ack, pong) carry none. */
function channelOf (event: RoomEvent): string | undefined {
  if (event.channel !== undefined) return event.channel
  const data = event.data as { roomId?: unknown, room?: { id?: unknown } }
  if (typeof data.roomId === 'string') return roomChannel(data.roomId)
  return typeof data.room?.id === 'string' ? roomChannel(data.room.id) : undefined
}
