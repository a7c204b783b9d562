/**
 * A `ws` socket behind the Transport interface, with bounded memory for clients that read slowly.
 *
 * Contract: while the socket is behind (more than `behindBytes` unsent), frames wait in a local queue in
 * order; a queued frame with a coalesce key (a room's `sync`) is replaced by a newer one with the same key,
 * so a slow viewer catches up to the newest playback state instead of replaying stale ones. When unsent plus
 * queued bytes pass `capBytes`, the socket is terminated: one slow client never holds unbounded memory.
 */
import type { WebSocket } from 'ws'
import type { Transport } from './transport.js'

interface Pending {
  frame: Buffer
  key: string | undefined
}

export class WsTransport implements Transport {
  private readonly pending: Pending[] = []
  private pendingBytes = 0
  private dead = false
  private readonly behindBytes: number
  private readonly onWritten = (): void => { this.drain() }

  constructor (
    private readonly socket: WebSocket,
    private readonly capBytes: number,
    private readonly onSlowConsumer: (unsentBytes: number) => void
  ) {
    this.behindBytes = Math.min(64 * 1024, Math.floor(capBytes / 4))
  }

  send (frame: Buffer, coalesceKey?: string): void {
    if (this.dead) return
    if (this.pending.length === 0 && this.socket.bufferedAmount < this.behindBytes) {
      this.socket.send(frame, { binary: false }, this.onWritten)
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
    const unsent = this.socket.bufferedAmount + this.pendingBytes
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
    return this.socket.bufferedAmount + this.pendingBytes
  }

  /** Moves queued frames to the socket while it keeps up. */
  private drain (): void {
    while (!this.dead && this.pending.length > 0 && this.socket.bufferedAmount < this.behindBytes) {
      const next = this.pending.shift()!
      this.pendingBytes -= next.frame.length
      this.socket.send(next.frame, { binary: false }, this.onWritten)
    }
  }
}
