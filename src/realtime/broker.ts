/**
 * Fan-out between processes. A publisher hands the broker one serialized frame for a channel; every
 * process's hub (this one included) delivers it to its local subscribers.
 *
 * Contract: frames published on one channel are delivered in publish order to every subscriber; the memory
 * broker delivers synchronously inside publish(). A multi-node broker (Redis) must keep per-channel order.
 */
export interface BrokerMessage {
  channel: string
  /** The serialized event, written as is to every subscriber. */
  frame: Buffer
  /** The event type (metrics). */
  type: string
  /** The connection that must not get it (the sender, which gets its own reply). */
  exceptConnectionId?: string
}

export type BrokerListener = (message: BrokerMessage) => void

export interface Broker {
  publish (message: BrokerMessage): void
  /** Registers the local hub's delivery; called once at start. */
  onMessage (listener: BrokerListener): void
  close (): Promise<void>
}

/** One process: publishing is local delivery. */
export class MemoryBroker implements Broker {
  private listener: BrokerListener | undefined

  publish (message: BrokerMessage): void {
    this.listener?.(message)
  }

  onMessage (listener: BrokerListener): void {
    this.listener = listener
  }

  async close (): Promise<void> {
    this.listener = undefined
  }
}
