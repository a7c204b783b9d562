/**
 * Local delivery: which connections of this process are on which channel. The hub knows nothing of rooms'
 * rules or of other processes; the broker feeds it.
 *
 * Contract: `deliver` writes one Buffer to every subscribed connection in subscription order, synchronously,
 * so events published in one order reach every local member in that order.
 */
import type { Transport } from './transport.js'

export interface HubConnection {
  readonly id: string
  readonly userId: string
  readonly transport: Transport
}

export class Hub {
  private readonly channels = new Map<string, Map<string, HubConnection>>()
  private readonly memberships = new Map<string, Set<string>>()
  private readonly connections = new Map<string, HubConnection>()

  add (connection: HubConnection): void {
    this.connections.set(connection.id, connection)
    this.memberships.set(connection.id, new Set())
  }

  /** Forgets a closed connection and every subscription it had. */
  remove (connectionId: string): void {
    for (const channel of this.memberships.get(connectionId) ?? []) this.channels.get(channel)?.delete(connectionId)
    for (const channel of this.memberships.get(connectionId) ?? []) this.pruneChannel(channel)
    this.memberships.delete(connectionId)
    this.connections.delete(connectionId)
  }

  subscribe (channel: string, connectionId: string): void {
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return
    let members = this.channels.get(channel)
    if (members === undefined) {
      members = new Map()
      this.channels.set(channel, members)
    }
    members.set(connectionId, connection)
    this.memberships.get(connectionId)?.add(channel)
  }

  unsubscribe (channel: string, connectionId: string): void {
    this.channels.get(channel)?.delete(connectionId)
    this.memberships.get(connectionId)?.delete(channel)
    this.pruneChannel(channel)
  }

  /** Unsubscribes everyone from a channel that is gone. */
  dropChannel (channel: string): void {
    for (const connectionId of this.channels.get(channel)?.keys() ?? []) this.memberships.get(connectionId)?.delete(channel)
    this.channels.delete(channel)
  }

  /** Writes `frame` to every local subscriber but `exceptConnectionId`; returns how many got it. */
  deliver (channel: string, frame: Buffer, exceptConnectionId?: string, coalesceKey?: string): number {
    const members = this.channels.get(channel)
    if (members === undefined) return 0
    let delivered = 0
    for (const connection of members.values()) {
      if (connection.id === exceptConnectionId) continue
      connection.transport.send(frame, coalesceKey)
      delivered++
    }
    return delivered
  }

  /** Writes `frame` to one local connection, if it is still open here; returns whether it was. */
  sendTo (connectionId: string, frame: Buffer): boolean {
    const connection = this.connections.get(connectionId)
    connection?.transport.send(frame)
    return connection !== undefined
  }

  /** The user of a local connection, or undefined when it is not open here. */
  connectionUser (connectionId: string): string | undefined {
    return this.connections.get(connectionId)?.userId
  }

  /** How many local connections a channel has (e.g. one user's connections on their user channel). */
  subscriberCount (channel: string): number {
    return this.channels.get(channel)?.size ?? 0
  }

  get connectionCount (): number {
    return this.connections.size
  }

  /** Every open connection (shutdown closes them all). */
  all (): IterableIterator<HubConnection> {
    return this.connections.values()
  }

  private pruneChannel (channel: string): void {
    if (this.channels.get(channel)?.size === 0) this.channels.delete(channel)
  }
}
