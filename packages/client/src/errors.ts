/**
 * What a request can end with other than its reply. Contract: every request settles exactly once, with its
 * reply or with one of these; branch on `code`, never on `message`.
 */
import type { ErrorBody, ErrorCode } from '@watch-party/protocol'

/** The protocol's error codes (the server refused), plus the client's own. */
export type ClientErrorCode = ErrorCode | 'TIMEOUT' | 'CONNECTION_LOST' | 'CLIENT_CLOSED' | 'UNEXPECTED_REPLY'

export class WatchPartyError extends Error {
  override name = 'WatchPartyError'
  constructor (readonly code: ClientErrorCode, message: string, readonly requestType?: string) {
    super(message)
  }
}

/** The server answered the request with `error`: `code` is one of the protocol's error codes. */
export class RequestError extends WatchPartyError {
  override name = 'RequestError'
  declare readonly code: ErrorCode
  /** The HTTP status title the server gave (`"Forbidden"`, …). */
  readonly title: string
  constructor (body: ErrorBody, requestType: string) {
    super(body.code, body.message, requestType)
    this.title = body.error
  }
}

/** No reply within the request's timeout. The request may still have been carried out. */
export class RequestTimeoutError extends WatchPartyError {
  override name = 'RequestTimeoutError'
  declare readonly code: 'TIMEOUT'
  constructor (requestType: string, readonly timeoutMs: number) {
    super('TIMEOUT', `${requestType}: no reply within ${timeoutMs} ms`, requestType)
  }
}

/**
 * The connection closed after the request was sent and before its reply; the request may or may not have been
 * carried out. (`chat` is the exception: it is sent again with the same id after the reconnect, and the server
 * answers a repeat with the stored line.)
 */
export class ConnectionLostError extends WatchPartyError {
  override name = 'ConnectionLostError'
  declare readonly code: 'CONNECTION_LOST'
  constructor (requestType: string, readonly closeCode: number) {
    super('CONNECTION_LOST', `${requestType}: the connection closed (${closeCode}) before the reply`, requestType)
  }
}

/** The client is closed (`close()`, or a close code it does not reconnect after). */
export class ClientClosedError extends WatchPartyError {
  override name = 'ClientClosedError'
  declare readonly code: 'CLIENT_CLOSED'
  constructor (requestType?: string) {
    super('CLIENT_CLOSED', `${requestType ?? 'request'}: the client is closed`, requestType)
  }
}
