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

/**
 * A channel's members: most channels (every connection's own `user:` channel) have one member, held as the
 * connection itself; a second member turns it into a Map in subscription order. The same for a connection's
 * channels: one name as a string, more as a Set. Idle connections are most of a server's memory.
 */
type Members = HubConnection | Map<string, HubConnection>
type Channels = string | Set<string>

function* channelNames (channels: Channels | undefined): Generator<string> {
  if (channels === undefined) return
  if (typeof channels === 'string') yield channels
  else yield * channels
}

export class Hub {
  private readonly channels = new Map<string, Members>()
  private readonly memberships = new Map<string, Channels>()
  private readonly connections = new Map<string, HubConnection>()

  add (connection: HubConnection): void {
    this.connections.set(connection.id, connection)
  }

  /** Forgets a closed connection and every subscription it had. */
  remove (connectionId: string): void {
    for (const channel of [...channelNames(this.memberships.get(connectionId))]) this.leave(channel, connectionId)
    this.memberships.delete(connectionId)
    this.connections.delete(connectionId)
  }

  subscribe (channel: string, connectionId: string): void {
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return
    const members = this.channels.get(channel)
    if (members === undefined || (!(members instanceof Map) && members.id === connectionId)) {
      this.channels.set(channel, connection)
    } else if (members instanceof Map) {
      members.set(connectionId, connection)
    } else {
      this.channels.set(channel, new Map([[members.id, members], [connectionId, connection]]))
    }
    const mine = this.memberships.get(connectionId)
    if (mine === undefined || mine === channel) this.memberships.set(connectionId, channel)
    else if (typeof mine === 'string') this.memberships.set(connectionId, new Set([mine, channel]))
    else mine.add(channel)
  }

  unsubscribe (channel: string, connectionId: string): void {
    this.leave(channel, connectionId)
    const mine = this.memberships.get(connectionId)
    if (mine === channel) this.memberships.delete(connectionId)
    else if (mine instanceof Set) mine.delete(channel)
  }

  /** Unsubscribes everyone from a channel that is gone. */
  dropChannel (channel: string): void {
    const members = this.channels.get(channel)
    if (members === undefined) return
    this.channels.delete(channel)
    for (const connectionId of members instanceof Map ? [...members.keys()] : [members.id]) {
      const mine = this.memberships.get(connectionId)
      if (mine === channel) this.memberships.delete(connectionId)
      else if (mine instanceof Set) mine.delete(channel)
    }
  }

  /** Writes `frame` to every local subscriber but `exceptConnectionId`; returns how many got it. */
  deliver (channel: string, frame: Buffer, exceptConnectionId?: string, coalesceKey?: string): number {
    const members = this.channels.get(channel)
    if (members === undefined) return 0
    if (!(members instanceof Map)) {
      if (members.id === exceptConnectionId) return 0
      members.transport.send(frame, coalesceKey)
      return 1
    }
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
    const members = this.channels.get(channel)
    return members === undefined ? 0 : members instanceof Map ? members.size : 1
  }

  get connectionCount (): number {
    return this.connections.size
  }

  /** Every open connection (shutdown closes them all). */
  all (): IterableIterator<HubConnection> {
    return this.connections.values()
  }

  /** Takes one connection off one channel's members, dropping a channel left empty (or back to one member). */
  private leave (channel: string, connectionId: string): void {
    const members = this.channels.get(channel)
    if (members === undefined) return
    if (!(members instanceof Map)) {
      if (members.id === connectionId) this.channels.delete(channel)
      return
    }
    members.delete(connectionId)
    if (members.size === 0) this.channels.delete(channel)
    else if (members.size === 1) this.channels.set(channel, members.values().next().value!)
  }
}
