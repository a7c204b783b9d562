/**
 * Typed errors: each carries a code of the contract (ERROR_CODES, from the protocol package) and so its HTTP
 * status; one handler per transport maps them to the ErrorResponse body (src/http/errors.ts, the connection).
 */
import { ERROR_CODES, type ErrorBody, type ErrorCode } from '@watch-party/protocol'

export { ERROR_CODE_NAMES, ERROR_CODES, type ErrorBody, type ErrorCode } from '@watch-party/protocol'

/** A failure the client caused or may retry; its message is safe to show. */
export class AppError extends Error {
  readonly status: number
  constructor (readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AppError'
    this.status = ERROR_CODES[code].status
  }

  toBody (): ErrorBody {
    return { error: ERROR_CODES[this.code].title, message: this.message, code: this.code }
  }
}

/** The database did not take a read or write; nothing was changed. Clients may retry. */
export class ServiceUnavailableError extends AppError {
  constructor (cause: unknown) {
    super('SERVICE_UNAVAILABLE', 'the database is unavailable; nothing was changed, try again shortly', { cause })
    this.name = 'ServiceUnavailableError'
  }
}

export function errorBody (code: ErrorCode, message: string): ErrorBody {
  return { error: ERROR_CODES[code].title, message, code }
}

/** The body for any unexpected failure: never the cause's message, stack or SQL. */
export const INTERNAL_ERROR_BODY: ErrorBody = errorBody('INTERNAL_ERROR', 'an unexpected error occurred')

/**
 * Cluster mode: a write of a room's owner carried a fencing token that is no longer the room's (another node
 * took the room over). Nothing was changed; the node stops serving the room, and the client retries.
 */
export class FencedOutError extends AppError {
  constructor (readonly roomId: string) {
    super('SERVICE_UNAVAILABLE', `room ${roomId} moved to another node; nothing was changed, try again`)
    this.name = 'FencedOutError'
  }
}
