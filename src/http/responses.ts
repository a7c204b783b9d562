/**
 * The documented answers of the REST routes: for each status a description and named examples, in the form
 * Fastify and @fastify/swagger both read (`{ description, content: { 'application/json': { schema, examples } } }`):
 * Fastify serializes with the schema, the OpenAPI document shows the rest as the response object.
 *
 * Contract: every example is valid against its schema (the OpenAPI lint test checks it), an error example's
 * code answers with the status it is listed under (test/http/openapi.test.ts), and its message is the one
 * the server sends for that case today.
 */
import type { TSchema } from 'typebox'
import { ERROR_CODES, type ErrorBody, type ErrorCode } from '../errors.js'
import type { Room } from '../rooms/shapes.js'
import { ErrorRef, RoomRef } from './schema-ref.js'

export const EXAMPLE_ROOM_ID = '3f0c2d9e-8c1a-4b7e-9f3a-2d1c0b9a8e7f'

/** A room a month into the year, with a party under way: what GET /rooms/{roomId} answers. */
export const EXAMPLE_ROOM: Room = {
  id: EXAMPLE_ROOM_ID,
  hostId: 'alice',
  name: 'Friday movie night',
  participants: ['alice', 'bob', 'carol'],
  isActive: true,
  createdAt: '2026-02-06T19:30:00.000Z',
  currentVideo: {
    roomId: EXAMPLE_ROOM_ID,
    videoUrl: 'https://videos.example.com/big-buck-bunny.mp4',
    currentTime: 754.2,
    isPlaying: true,
    playbackRate: 1,
    updatedAt: 1770407352000
  }
}

/** The same room as POST /rooms answers it: nobody joined yet, nothing played. */
export const EXAMPLE_NEW_ROOM: Room = { ...EXAMPLE_ROOM, participants: [], createdAt: '2026-02-06T19:28:41.512Z', currentVideo: null }

interface Example { summary: string, value: unknown }

export interface DocumentedResponse {
  description: string
  content: { 'application/json': { schema: TSchema, examples: Record<string, Example> } }
}

/** A JSON answer: its schema, what it means, and named examples. */
export function documented (schema: TSchema, description: string, examples: Record<string, Example>): DocumentedResponse {
  return { description, content: { 'application/json': { schema, examples } } }
}

/** A Room answer (the shared component). */
export function roomResponse (description: string, examples: Record<string, { summary: string, value: Room }>): DocumentedResponse {
  return documented(RoomRef, description, examples)
}

/**
 * An ErrorResponse answer for one status: `cases` maps each code it may carry to a summary and the message
 * the server sends. `title` overrides the status title where Fastify chose the status (415).
 */
export function errorResponse (description: string, cases: Partial<Record<ErrorCode, ErrorCase | ErrorCase[]>>, title?: string): DocumentedResponse {
  const examples: Record<string, Example> = {}
  for (const [code, list] of Object.entries(cases) as Array<[ErrorCode, ErrorCase | ErrorCase[]]>) {
    for (const { summary, message, variant } of Array.isArray(list) ? list : [list]) {
      const value: ErrorBody = { error: title ?? ERROR_CODES[code].title, message, code }
      examples[variant === undefined ? code : `${code}_${variant}`] = { summary, value }
    }
  }
  return documented(ErrorRef, description, examples)
}

/** One example of a code; `variant` names it when a status shows the same code more than once. */
interface ErrorCase { summary: string, message: string, variant?: string }

/** Answers more than one route gives, with the same meaning everywhere. */
export const COMMON_ERRORS = {
  unauthorized: errorResponse('No identity, or a bad one: a missing, expired or forged token (JWT mode), a missing or malformed x-user-id (development mode).', {
    UNAUTHORIZED: [
      { summary: 'JWT mode: no token', message: 'missing token: send "Authorization: Bearer <token>" (or ?token=<token> on the WebSocket)' },
      { summary: 'JWT mode: expired token', message: 'token expired', variant: 'EXPIRED' },
      { summary: 'Development mode: no x-user-id', message: 'development mode: send the user id in the x-user-id header (or ?userId= on the WebSocket)', variant: 'DEVELOPMENT' }
    ]
  }),
  rateLimited: errorResponse('More than REST_RATE_LIMIT_PER_MINUTE requests this minute from this user (or address); Retry-After says when to retry.', {
    RATE_LIMITED: { summary: 'REST budget spent', message: 'too many requests: at most 300 a minute; retry in 42 seconds' }
  }),
  unavailable: errorResponse('The database did not answer; nothing was changed. Retry with backoff.', {
    SERVICE_UNAVAILABLE: { summary: 'Database outage', message: 'the database is unavailable; nothing was changed, try again shortly' }
  }),
  invalidRoomId: errorResponse('The room id in the path is not a UUID.', {
    INVALID_ROOM_ID: { summary: 'Not a UUID', message: 'the room id in the path is not a UUID' }
  }),
  roomNotFound: errorResponse('No room has this id.', {
    ROOM_NOT_FOUND: { summary: 'Unknown room', message: `room ${EXAMPLE_ROOM_ID} does not exist` }
  }),
  unexpectedQuery: errorResponse('The request carried a query parameter; this endpoint takes none.', {
    VALIDATION_FAILED: { summary: 'Unexpected query parameter', message: 'querystring/verbose schema is false, querystring must not have additional properties' }
  })
}
