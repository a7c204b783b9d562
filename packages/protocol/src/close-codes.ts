/**
 * Why the server closes a connection, and what a client does about it:
 * - 1012 server restart: reconnect at once (with a little jitter) and rejoin with `since`.
 * - 1006 (no close frame: a dropped network or a missed heartbeat) and 1013 (try again later: a connection cap,
 *   the connect rate, or an identity provider that could not be reached): reconnect with exponential backoff
 *   and jitter.
 * - 4401 bad or expired token: reconnect only with a fresh token.
 * - 1003 binary frame, 1009 frame over MAX_FRAME_BYTES, 4429 sustained flooding: a client bug; do not
 *   reconnect without fixing it.
 */
export const CLOSE_CODES = {
  UNSUPPORTED_DATA: 1003,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  FLOODING: 4429
} as const

export type CloseCode = typeof CLOSE_CODES[keyof typeof CLOSE_CODES]

/** Frames above this size close the connection with 1009 (enforced before parsing). */
export const MAX_FRAME_BYTES = 64 * 1024
