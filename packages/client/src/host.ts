/**
 * What the client needs of the environment it runs in (a browser or Node 20+), typed here so the package
 * compiles against neither the DOM nor the Node typings: a WebSocket, timers, a clock, base64.
 */

/** The part of a WebSocket the client uses: what browsers' `WebSocket` and the `ws` package both have. */
export interface SocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener (type: 'close', listener: (event: { code: number, reason: string }) => void): void
  addEventListener (type: 'open' | 'error', listener: (event: unknown) => void): void
}

/** A WebSocket class: `globalThis.WebSocket` in browsers (and Node 22+), `WebSocket` of the `ws` package in Node 20. */
export type WebSocketClass = new (url: string) => SocketLike

/** `readyState` of an open socket. */
export const SOCKET_OPEN = 1

/**
 * Timers the client schedules on. Contract: `setTimeout` runs `task` once, no earlier than `ms` from now, unless
 * the returned cancel function was called first. Tests pass a fake clock to drive backoff without waiting.
 */
export interface Timers {
  setTimeout (task: () => void, ms: number): () => void
}

interface HostGlobals {
  setTimeout (task: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
  atob (data: string): string
  queueMicrotask (task: () => void): void
  URL: new (url: string) => { searchParams: { set (name: string, value: string): void }, toString (): string }
  TextDecoder: new () => { decode (bytes: Uint8Array): string }
  WebSocket?: WebSocketClass
  performance?: { now (): number, timeOrigin: number }
}

const host = globalThis as unknown as HostGlobals

export const realTimers: Timers = {
  setTimeout (task, ms) {
    const handle = host.setTimeout(task, ms)
    return () => { host.clearTimeout(handle) }
  }
}

/** The local clock, epoch ms with sub-millisecond precision where the platform has `performance`. */
export const localNow = (): number => {
  const performance = host.performance
  return performance === undefined ? Date.now() : performance.timeOrigin + performance.now()
}

export const globalWebSocket = (): WebSocketClass | undefined => host.WebSocket

/** `url` with its query parameter `name` set to `value`. */
export function withQuery (url: string, name: string, value: string): string {
  const parsed = new host.URL(url)
  parsed.searchParams.set(name, value)
  return parsed.toString()
}

/** Decodes base64url (JWT segments) to text. */
export function decodeBase64Url (segment: string): string {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(segment.length / 4) * 4, '=')
  const binary = host.atob(base64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return new host.TextDecoder().decode(bytes)
}

/** Reports an error thrown by an application's listener without unwinding the client's own code. */
export function reportListenerError (err: unknown): void {
  host.queueMicrotask(() => { throw err })
}
