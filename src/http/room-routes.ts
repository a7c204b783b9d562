/**
 * REST for rooms, exactly as in shared/protocol.md. Every route declares its body, params, query and
 * response schemas: the same schemas validate, serialize and document it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AppError } from '../errors.js'
import type { PageCursor } from '../rooms/room-repository.js'
import type { RoomService } from '../rooms/room-service.js'
import { RoomName, UUID_REGEX } from '../rooms/shapes.js'
import { ErrorRef, RoomRef } from './schema-ref.js'

export interface RoomRoutesOptions {
  rooms: RoomService
}

const RoomIdParams = Type.Object({
  roomId: Type.String({ format: 'uuid', description: 'The room id (UUID).' })
})

const DEFAULT_PAGE_SIZE = 20

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ErrorRef]))

export const roomRoutes: FastifyPluginAsyncTypebox<RoomRoutesOptions> = async (app, { rooms }) => {
  app.post('/rooms', {
    schema: {
      tags: ['rooms'],
      summary: 'Create a room',
      description: 'The caller becomes its host. `participants` stays empty until someone joins over the WebSocket; ' +
        'a room nobody joins is closed after EMPTY_ROOM_TTL_MS. A body that is not `application/json` answers 415.',
      security: [{ bearer: [] }, { devUserId: [] }],
      body: Type.Object({ name: RoomName }, { additionalProperties: false }),
      response: { 201: RoomRef, ...errors(400, 401, 413, 415, 429, 503) }
    }
  }, async (request, reply) => {
    const room = await rooms.createRoom(request.userId, request.body.name)
    return await reply.status(201).send(room)
  })

  app.get('/rooms', {
    schema: {
      tags: ['rooms'],
      summary: 'List open rooms, newest first',
      description: 'Keyset pagination: pass `nextCursor` of one page as `cursor` to get the next; null on the last page.',
      security: [{ bearer: [] }, { devUserId: [] }],
      querystring: Type.Object({
        // Optional: the TypeBox validator does not fill in defaults, so the handler applies it.
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_PAGE_SIZE })),
        cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page.' }))
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({ rooms: Type.Array(RoomRef), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
        ...errors(400, 401, 503)
      }
    }
  }, async (request) => {
    const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
    const page = await rooms.listRooms(request.query.limit ?? DEFAULT_PAGE_SIZE, after)
    return { rooms: page.rooms, nextCursor: page.next === null ? null : encodeCursor(page.next) }
  })

  app.get('/rooms/:roomId', {
    schema: {
      tags: ['rooms'],
      summary: 'Get a room (a closed one too, with isActive false)',
      security: [{ bearer: [] }, { devUserId: [] }],
      params: RoomIdParams,
      response: { 200: RoomRef, ...errors(400, 401, 404, 503) }
    }
  }, async (request) => await rooms.getRoom(request.params.roomId))

  app.delete('/rooms/:roomId', {
    schema: {
      tags: ['rooms'],
      summary: 'Close a room (host only)',
      description: 'Members get `room_closed` with reason "deleted". Closing a room that is already closed answers 204 again.',
      security: [{ bearer: [] }, { devUserId: [] }],
      params: RoomIdParams,
      response: { 204: Type.Null({ description: 'Closed.' }), ...errors(400, 401, 403, 404, 503) }
    }
  }, async (request, reply) => {
    await rooms.closeRoom(request.params.roomId, request.userId)
    return await reply.status(204).send(null)
  })
}

const LAST_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/** Opaque to clients: the position after the last room of a page. */
export function encodeCursor (cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.getTime(), cursor.id])).toString('base64url')
}

export function decodeCursor (raw: string): PageCursor {
  const invalid = new AppError('VALIDATION_FAILED', 'cursor is not one this server handed out')
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'))
  } catch {
    throw invalid
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw invalid
  const [ms, id] = parsed as unknown[]
  // Postgres timestamps end with the year 9999; a later instant cannot be one this server handed out.
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || ms > LAST_TIMESTAMP_MS || typeof id !== 'string' || !UUID_REGEX.test(id)) throw invalid
  return { createdAt: new Date(ms), id }
}
