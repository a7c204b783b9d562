/**
 * REST for rooms, exactly as in shared/protocol.md. Every route declares its body, params, query and
 * response schemas: the same schemas validate, serialize and document it.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { AppError } from '../errors.js'
import type { PageCursor } from '../rooms/room-repository.js'
import type { RoomHost } from '../rooms/room-host.js'
import type { RoomReads } from '../rooms/room-reads.js'
import { RoomName, UUID_REGEX } from '../rooms/shapes.js'
import { RoomRef } from './schema-ref.js'
import { COMMON_ERRORS, EXAMPLE_NEW_ROOM, EXAMPLE_ROOM, EXAMPLE_ROOM_ID, documented, errorResponse, roomResponse } from './responses.js'

export interface RoomRoutesOptions {
  /** Changes: the owner side. */
  rooms: Pick<RoomHost, 'createRoom' | 'closeRoom'>
  /** Reads: never wait behind a room's writes. */
  reads: Pick<RoomReads, 'listRooms' | 'getRoom'>
}

const RoomIdParams = Type.Object({
  roomId: Type.String({ format: 'uuid', description: 'The room id (UUID).', examples: [EXAMPLE_ROOM_ID] })
})

const DEFAULT_PAGE_SIZE = 20

/** Who may call: a JWT (`Authorization: Bearer`) or, in development mode, the x-user-id header. */
const SECURITY: Array<Record<string, string[]>> = [{ bearer: [] }, { devUserId: [] }]

const CreatedRoom = roomResponse('The room, with the caller as its host and nobody in it yet.', {
  created: { summary: 'A new room', value: EXAMPLE_NEW_ROOM }
})
const FoundRoom = roomResponse('The room: open, or closed with isActive false.', {
  playing: { summary: 'A party under way', value: EXAMPLE_ROOM },
  closed: { summary: 'A closed room', value: { ...EXAMPLE_ROOM, isActive: false, participants: [] } }
})
const RoomPage = documented(Type.Object({
  rooms: Type.Array(RoomRef),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last page.' })
}), 'One page of open rooms, newest first.', {
  lastPage: { summary: 'The only page', value: { rooms: [EXAMPLE_ROOM], nextCursor: null } },
  morePages: { summary: 'A page with more after it', value: { rooms: [EXAMPLE_ROOM], nextCursor: 'WzE3NzA0MDY5MjE1MTIsIjNmMGMyZDllLThjMWEtNGI3ZS05ZjNhLTJkMWMwYjlhOGU3ZiJd' } }
})

export const roomRoutes: FastifyPluginAsyncTypebox<RoomRoutesOptions> = async (app, { rooms, reads }) => {
  app.post('/rooms', {
    schema: {
      tags: ['rooms'],
      operationId: 'createRoom',
      summary: 'Create a room',
      description: 'The caller becomes its host. `participants` stays empty until someone joins over the WebSocket; ' +
        'a room nobody joins is closed after EMPTY_ROOM_TTL_MS. A body that is not JSON answers 400 or 415.',
      security: SECURITY,
      body: Type.Object({ name: RoomName }, { additionalProperties: false, examples: [{ name: 'Friday movie night' }] }),
      response: {
        201: CreatedRoom,
        400: errorResponse('The body is not `{"name": string}` with a name of 1-100 characters, not only white space.', {
          VALIDATION_FAILED: { summary: 'No name', message: 'body must have required properties name' }
        }),
        401: COMMON_ERRORS.unauthorized,
        413: errorResponse('The body is larger than BODY_LIMIT_BYTES.', {
          PAYLOAD_TOO_LARGE: { summary: 'Body too large', message: 'the request body is larger than the server accepts' }
        }),
        415: errorResponse('The Content-Type is one the server does not read; send application/json.', {
          VALIDATION_FAILED: { summary: 'Not JSON', message: 'Unsupported Media Type: application/xml' }
        }, 'Unsupported Media Type'),
        429: errorResponse('The caller already hosts MAX_ROOMS_PER_HOST open rooms, or spent the REST budget (Retry-After).', {
          ROOM_LIMIT_REACHED: { summary: 'Too many open rooms', message: 'alice already hosts 10 open rooms (at most 10); close one first' },
          RATE_LIMITED: { summary: 'REST budget spent', message: 'too many requests: at most 300 a minute; retry in 42 seconds' }
        }),
        503: COMMON_ERRORS.unavailable
      }
    }
  }, async (request, reply) => {
    const room = await rooms.createRoom(request.userId, request.body.name)
    return await reply.status(201).send(room)
  })

  app.get('/rooms', {
    schema: {
      tags: ['rooms'],
      operationId: 'listRooms',
      summary: 'List open rooms, newest first',
      description: 'Keyset pagination: pass `nextCursor` of one page as `cursor` to get the next; null on the last page.',
      security: SECURITY,
      querystring: Type.Object({
        // Optional: the TypeBox validator does not fill in defaults, so the handler applies it.
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_PAGE_SIZE })),
        cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'nextCursor of the previous page.' }))
      }, { additionalProperties: false }),
      response: {
        200: RoomPage,
        400: errorResponse('`limit` is not an integer 1-100, `cursor` is not one this server handed out, or the query has another parameter.', {
          VALIDATION_FAILED: { summary: 'limit out of range', message: 'querystring/limit must be <= 100' }
        }),
        401: COMMON_ERRORS.unauthorized,
        429: COMMON_ERRORS.rateLimited,
        503: COMMON_ERRORS.unavailable
      }
    }
  }, async (request) => {
    const after = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
    const page = await reads.listRooms(request.query.limit ?? DEFAULT_PAGE_SIZE, after)
    return { rooms: page.rooms, nextCursor: page.next === null ? null : encodeCursor(page.next) }
  })

  app.get('/rooms/:roomId', {
    schema: {
      tags: ['rooms'],
      operationId: 'getRoom',
      summary: 'Get a room (a closed one too, with isActive false)',
      description: 'Participants, host and current playback as the server knows them now; a playing video\'s ' +
        '`currentTime` is extrapolated to the moment of the answer.',
      security: SECURITY,
      params: RoomIdParams,
      response: {
        200: FoundRoom,
        400: COMMON_ERRORS.invalidRoomId,
        401: COMMON_ERRORS.unauthorized,
        404: COMMON_ERRORS.roomNotFound,
        429: COMMON_ERRORS.rateLimited,
        503: COMMON_ERRORS.unavailable
      }
    }
  }, async (request) => await reads.getRoom(request.params.roomId))

  app.delete('/rooms/:roomId', {
    schema: {
      tags: ['rooms'],
      operationId: 'closeRoom',
      summary: 'Close a room (host only)',
      description: 'Members get `room_closed` with reason "deleted". Closing a room that is already closed answers 204 again.',
      security: SECURITY,
      params: RoomIdParams,
      response: {
        204: Type.Null({ description: 'The room is closed (or already was); no body.' }),
        400: COMMON_ERRORS.invalidRoomId,
        401: COMMON_ERRORS.unauthorized,
        403: errorResponse('The caller is not the host of the room.', {
          NOT_HOST: { summary: 'Not the host', message: `only the host of room ${EXAMPLE_ROOM_ID} may close it` }
        }),
        404: COMMON_ERRORS.roomNotFound,
        429: COMMON_ERRORS.rateLimited,
        503: COMMON_ERRORS.unavailable
      }
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
