/**
 * Fan-out between processes, in the shape of centrifuge's Broker: a node subscribes to the channels it has
 * local members on; a publisher hands the broker one serialized frame for a channel; every subscribed node's
 * hub (this one included) delivers it to its local members.
 *
 * Contracts:
 * - Frames published on one channel reach every subscriber in publish order; the memory broker delivers
 *   synchronously inside publish().
 * - A stream event carries its position. Positions are assigned by the room's owner as it stores the event
 *   with the change it records (PostgreSQL is the truth of the sequence, see room-host.ts), so saving to history
 *   happens before publishing, always; the broker carries the position and returns it.
 * - A subscriber that sees a seq other than last+1 in the same epoch fills the gap from `history` before
 *   delivering anything newer (the multi-node broker does this; in one process nothing is ever lost).
 */
export interface StreamPosition {
  epoch: string
  seq: number
}

export interface BrokerMessage {
  channel: string
  /** The serialized event, written as is to every subscriber. */
  frame: Buffer
  /** The event type (metrics). */
  type: string
  /** The connection that must not get it (the sender, which gets its own reply). */
  exceptConnectionId?: string
  /** A stream event's position in its room's stream. */
  position?: StreamPosition
}

export type BrokerListener = (message: BrokerMessage) => void

/** Reads a channel's stored stream events after `since.seq`, oldest first (gap fills). */
export type HistoryReader = (channel: string, since: StreamPosition, limit: number) => Promise<BrokerMessage[]>

export interface Broker {
  /** This node wants the channel's publications. */
  subscribe (channel: string): void
  unsubscribe (channel: string): void
  /** Publishes one frame; returns the stream position it carries, if any. */
  publish (message: BrokerMessage): StreamPosition | undefined
  /** The channel's stream events after `since`, as stored. */
  history (channel: string, since: StreamPosition, limit: number): Promise<BrokerMessage[]>
  /** Registers the local hub's delivery; called once at start. */
  onMessage (listener: BrokerListener): void
  close (): Promise<void>
}

/** One process: publishing is local delivery; history is what the room host stored. */
export class MemoryBroker implements Broker {
  private listener: BrokerListener | undefined

  constructor (private readonly reader: HistoryReader = async () => []) {}

  subscribe (): void {}

  unsubscribe (): void {}

  publish (message: BrokerMessage): StreamPosition | undefined {
    this.listener?.(message)
    return message.position
  }

  async history (channel: string, since: StreamPosition, limit: number): Promise<BrokerMessage[]> {
    return await this.reader(channel, since, limit)
  }

  onMessage (listener: BrokerListener): void {
    this.listener = listener
  }

  async close (): Promise<void> {
    this.listener = undefined
  }
}
