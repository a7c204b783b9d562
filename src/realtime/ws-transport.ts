/**
 * A `ws` socket behind the Transport interface, with bounded memory for clients that read slowly.
 *
 * Contract: while the socket is behind (more than `behindBytes` unsent), frames wait in a local queue in
 * order; a queued frame with a coalesce key (a room's `sync`) is replaced by a newer one with the same key,
 * so a slow viewer catches up to the newest playback state instead of replaying stale ones. When unsent plus
 * queued bytes pass `capBytes`, the socket is terminated: one slow client never holds unbounded memory.
 *
 * Fan-out writes pre-framed bytes: the WebSocket frame of a payload is built once, however many sockets it
 * goes to, and written to each TCP socket as one buffer, instead of `ws` building a header per socket and
 * writing header and payload as a pair. This requires that `ws` never queue frames of its own, which holds
 * with permessage-deflate off (ws-route.ts turns it off): ws's own writes (pings, pongs, close frames) then
 * go straight to the same TCP socket, in call order with ours. While Node's stream of that socket is empty,
 * a frame goes to the TCP handle directly (tcp-direct-write.ts), skipping Node's per-write bookkeeping; the
 * bytes such writes leave queued in libuv count as unsent like any other.
 */
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Transport } from './transport.js'
import { writeDirect } from './tcp-direct-write.js'
import { textFrame } from './ws-frame.js'

interface Pending {
  frame: Buffer
  key: string | undefined
}

/** ws's readyState while frames may be sent. */
const OPEN = 1

export class WsTransport implements Transport {
  private readonly pending: Pending[] = []
  private pendingBytes = 0
  /** Bytes of direct writes that libuv has queued and not yet finished. */
  private directBytes = 0
  private dead = false
  private readonly behindBytes: number
  /** Made on the first write that needs a callback (most sockets never fall behind: no closure each). */
  private onWritten: (() => void) | undefined

  constructor (
    private readonly socket: WebSocket,
    private readonly capBytes: number,
    private readonly onSlowConsumer: (unsentBytes: number) => void
  ) {
    this.behindBytes = Math.min(64 * 1024, Math.floor(capBytes / 4))
  }

  send (frame: Buffer, coalesceKey?: string): void {
    if (this.dead) return
    const buffered = this.socket.bufferedAmount + this.directBytes
    if (this.pending.length === 0 && buffered < this.behindBytes) {
      // A write callback costs time on every frame; only a write that leaves the socket at least half-way
      // behind needs one. Frames are queued only while the socket is behind, and then the newest write left
      // it over half-way and has not been written yet: its callback is still to come and will drain the queue.
      this.write(frame, buffered + frame.length >= this.behindBytes / 2)
      return
    }
    if (coalesceKey !== undefined) {
      const stale = this.pending.findIndex((p) => p.key === coalesceKey)
      if (stale !== -1) {
        this.pendingBytes -= this.pending[stale]!.frame.length
        this.pending.splice(stale, 1)
      }
    }
    this.pending.push({ frame, key: coalesceKey })
    this.pendingBytes += frame.length
    const unsent = this.bufferedAmount
    if (unsent > this.capBytes) {
      this.dead = true
      this.pending.length = 0
      this.pendingBytes = 0
      this.onSlowConsumer(unsent)
      this.socket.terminate()
    }
  }

  close (code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  terminate (): void {
    this.dead = true
    this.socket.terminate()
  }

  get bufferedAmount (): number {
    return this.socket.bufferedAmount + this.directBytes + this.pendingBytes
  }

  /** Writes one text frame; a socket that is closing or closed takes no more frames (they are dropped). */
  private write (payload: Buffer, withCallback: boolean): void {
    const tcp = (this.socket as unknown as { _socket?: Socket })._socket
    if (this.socket.readyState !== OPEN || tcp === undefined) return
    const frame = textFrame(payload)
    const direct = writeDirect(tcp, frame, this)
    if (direct === 'done') return
    if (direct === 'pending') {
      this.directBytes += frame.length
      return
    }
    if (direct === 'failed') {
      this.terminate()
      return
    }
    tcp.write(frame, withCallback ? (this.onWritten ??= () => { this.drain() }) : undefined)
  }

  /** A direct write that libuv had queued has finished (tcp-direct-write.ts). */
  directWritten (ok: boolean, bytes: number): void {
    this.directBytes -= bytes
    if (ok) this.drain()
    else this.terminate()
  }

  /** Moves queued frames to the socket while it keeps up. */
  private drain (): void {
    while (!this.dead && this.pending.length > 0 && this.socket.bufferedAmount + this.directBytes < this.behindBytes) {
      const next = this.pending.shift()!
      this.pendingBytes -= next.frame.length
      this.write(next.frame, true)
    }
  }
}
