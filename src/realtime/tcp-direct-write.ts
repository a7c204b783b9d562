/**
 * Writing a Buffer straight to a TCP socket's libuv handle, past Node's Writable stream machinery.
 *
 * A fan-out writes one small frame to each of many sockets. Through `socket.write` each write runs Node's
 * Writable bookkeeping (state checks, a WriteWrap, the callback and its nextTick) before libuv's
 * `uv_try_write`; here the frame goes to the handle's `writeBuffer` directly, which is what `socket.write`
 * ends up calling. Node exposes the request class only through `process.binding('stream_wrap')` (present on
 * Node 20, 22 and 24); where it is missing (or SOCKET_WRITES=stream), `writeDirect` answers `'unavailable'` and callers keep using `socket.write`.
 *
 * Contract of `writeDirect(socket, frame, owner)`:
 * - it may be used only while Node's own stream has nothing queued or in flight (`socket.writableLength === 0`),
 *   so a direct write never overtakes a byte written through `socket.write`; writes after it, of either kind,
 *   queue behind it in libuv's write queue, so the bytes on the wire keep call order;
 * - it returns `'done'` when the whole frame was written at once, `'pending'` when libuv queued (part of) it
 *   (then `owner.directWritten(ok, frame.length)` is called once, later, when it is written or failed), `'failed'` when the socket is unusable
 *   (closed handle or a write error: the caller drops the socket), and `'unavailable'` when it could not be
 *   tried (no binding, no handle, or Node's stream is not empty): the caller then uses `socket.write`;
 * - the frame must not be modified afterwards (a pending write still reads it).
 */
import type { Socket } from 'node:net'

interface WriteRequest {
  handle: unknown
  oncomplete?: (status: number) => void
  async: boolean
  buffer?: Buffer
}

interface StreamHandle {
  writeBuffer: (request: WriteRequest, data: Buffer) => number
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest
  streamBaseState: Int32Array
  kLastWriteWasAsync: number
}

function loadBinding (): StreamWrapBinding | undefined {
  try {
    const binding = (process as unknown as { binding?: (name: string) => unknown }).binding?.('stream_wrap') as Partial<StreamWrapBinding> | undefined
    if (typeof binding?.WriteWrap !== 'function' || binding.streamBaseState === undefined || typeof binding.kLastWriteWasAsync !== 'number') return undefined
    return binding as StreamWrapBinding
  } catch {
    return undefined
  }
}

const available = loadBinding()
let binding = available

/** Whether this Node.js offers the direct path at all. */
export const directWritesAvailable = available !== undefined

/**
 * SOCKET_WRITES (set once at start, by the app): `direct` uses the direct path where available, `stream`
 * never does (every frame through `socket.write`). Returns whether direct writes are now in use.
 */
export function useDirectWrites (enabled: boolean): boolean {
  binding = enabled ? available : undefined
  return binding !== undefined
}

export type DirectWriteResult = 'done' | 'pending' | 'failed' | 'unavailable'

/**
 * A write that completes at once leaves its request untouched (libuv never saw it), so the next write reuses
 * it; a write that libuv queues keeps its request until it completes, and the next write gets a fresh one.
 */
let spare: WriteRequest | undefined

/** Who hears of a queued write's end (an object, not a closure per socket). */
export interface DirectWriteOwner { directWritten: (ok: boolean, bytes: number) => void }

export function writeDirect (socket: Socket, frame: Buffer, owner: DirectWriteOwner): DirectWriteResult {
  if (binding === undefined || socket.writableLength !== 0) return 'unavailable'
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle
  if (handle === undefined || handle === null || typeof handle.writeBuffer !== 'function') return 'unavailable'
  const request = spare ?? new binding.WriteWrap()
  spare = undefined
  request.handle = handle
  request.async = false
  const error = handle.writeBuffer(request, frame)
  if (error !== 0) return 'failed'
  if (binding.streamBaseState[binding.kLastWriteWasAsync] === 0) {
    request.handle = undefined
    spare = request
    return 'done'
  }
  // libuv reads the frame's memory until the write completes (never before this function returns): the
  // request keeps it alive and reports the end.
  request.async = true
  request.buffer = frame
  request.oncomplete = (status: number) => { owner.directWritten(status >= 0, frame.length) }
  return 'pending'
}
