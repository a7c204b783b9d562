/**
 * What the client does after a close, by close code, and how long it waits. The table in docs/client.md is
 * this file in prose; the close codes are the protocol's (CLOSE_CODES).
 */
import type { CLOSE_CODES as ProtocolCloseCodes } from '@watch-party/protocol'

/** The protocol's close codes, checked against the protocol package at compile time (no runtime import). */
export const CLOSE_CODES = {
  UNSUPPORTED_DATA: 1003,
  MESSAGE_TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  FLOODING: 4429
} as const satisfies typeof ProtocolCloseCodes

/** No close frame: the network dropped, the server was killed, or a heartbeat was missed. */
export const ABNORMAL_CLOSURE = 1006
/** Protocol errors the `ws` library closes with (1002 bad frame, 1007 invalid UTF-8, 1008 too many fragments): client bugs. */
const PROTOCOL_ERRORS: ReadonlySet<number> = new Set([1002, 1007, 1008])

/**
 * - `restart`: the server is restarting (1012): reconnect at once, after a random 0..restartJitterMs.
 * - `backoff`: reconnect after an exponentially growing delay with jitter (1006, 1013, and any code not listed).
 * - `token`: the token was refused or expired (4401): reconnect only once the token callback gives a new one.
 * - `ask`: a client bug (1003 binary frame, 1009 frame too big, 4429 flooding or too many connections, and the
 *   protocol errors 1002, 1007, 1008): reconnect only if the app's `reconnectOn` says so, then with backoff.
 */
export type ClosePolicy = 'restart' | 'backoff' | 'token' | 'ask'

export function closePolicy (code: number): ClosePolicy {
  switch (code) {
    case CLOSE_CODES.SERVICE_RESTART: return 'restart'
    case CLOSE_CODES.UNAUTHORIZED: return 'token'
    case CLOSE_CODES.UNSUPPORTED_DATA:
    case CLOSE_CODES.MESSAGE_TOO_BIG:
    case CLOSE_CODES.FLOODING: return 'ask'
    default: return PROTOCOL_ERRORS.has(code) ? 'ask' : 'backoff'
  }
}

export interface BackoffOptions {
  /** The first backoff delay's ceiling, ms (default 500). */
  minDelayMs: number
  /** The ceiling no delay passes, ms (default 20000). */
  maxDelayMs: number
  /** Each failed attempt multiplies the ceiling by this (default 2). */
  factor: number
  /** After 1012, the reconnect waits a random 0..restartJitterMs (default 1000), so clients do not arrive at once. */
  restartJitterMs: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { minDelayMs: 500, maxDelayMs: 20_000, factor: 2, restartJitterMs: 1000 }

/**
 * The wait before reconnect attempt `attempt` (0 for the first after a success): "equal jitter", half of the
 * ceiling `min(maxDelayMs, minDelayMs * factor^attempt)` fixed and half random, so the delays grow
 * and clients that dropped together spread out. `random` is in [0, 1).
 */
export function backoffDelay (attempt: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.minDelayMs * options.factor ** Math.max(0, attempt))
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}

export function restartDelay (options: BackoffOptions, random: () => number): number {
  return Math.round(random() * options.restartJitterMs)
}
