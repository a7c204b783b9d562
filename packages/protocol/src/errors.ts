/**
 * The error codes of the contract, each with the HTTP status REST answers with and the `error` title of the
 * ErrorResponse body. WebSocket `error` events carry the same body.
 *
 * Contract: `code` is the only thing a client may branch on; `message` is for humans and may change.
 */
export const ERROR_CODES = {
  UNAUTHORIZED: { status: 401, title: 'Unauthorized' },
  VALIDATION_FAILED: { status: 400, title: 'Bad Request' },
  INVALID_MESSAGE: { status: 400, title: 'Bad Request' },
  UNKNOWN_EVENT: { status: 400, title: 'Bad Request' },
  INVALID_ROOM_ID: { status: 400, title: 'Bad Request' },
  ROOM_NOT_FOUND: { status: 404, title: 'Not Found' },
  ROOM_CLOSED: { status: 410, title: 'Gone' },
  ROOM_FULL: { status: 409, title: 'Conflict' },
  NOT_IN_ROOM: { status: 403, title: 'Forbidden' },
  NOT_HOST: { status: 403, title: 'Forbidden' },
  USER_NOT_IN_ROOM: { status: 409, title: 'Conflict' },
  INVALID_CHAT_ID: { status: 400, title: 'Bad Request' },
  RATE_LIMITED: { status: 429, title: 'Too Many Requests' },
  ROOM_LIMIT_REACHED: { status: 429, title: 'Too Many Requests' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload Too Large' },
  ORIGIN_NOT_ALLOWED: { status: 403, title: 'Forbidden' },
  NOT_FOUND: { status: 404, title: 'Not Found' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service Unavailable' },
  INTERNAL_ERROR: { status: 500, title: 'Internal Server Error' }
} as const

export type ErrorCode = keyof typeof ERROR_CODES
export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as ErrorCode[]

export interface ErrorBody {
  error: string
  message: string
  code: ErrorCode
}
