/**
 * The narrow face of a socket that the rest of the realtime code sees. Nothing outside ws-route.ts
 * imports `ws`, so hub, connection and handlers are tested with plain objects.
 */
export interface Transport {
  /**
   * Queues one text frame; the same Buffer may be handed to many transports (fan-out). Frames with the same
   * `coalesceKey` that are still queued because the client is behind are replaced by the newest one.
   * A Buffer handed to `send` must never be modified afterwards (transports may keep or cache it).
   */
  send (frame: Buffer, coalesceKey?: string): void
  /** Starts the closing handshake with a code clients act on (see CLOSE_CODES). */
  close (code: number, reason: string): void
  /** Drops the socket at once (missed heartbeat, slow consumer). */
  terminate (): void
  /** Bytes queued but not yet written to the network. */
  readonly bufferedAmount: number
}
