/**
 * The Broker of cluster mode: room events travel over Redis to every node with members in the room, where
 * this broker checks their positions before the hub delivers them.
 *
 * Contracts (centrifuge's recovery rule, with PostgreSQL as the history):
 * - Events of a room are delivered to local members in the order the owner published them.
 * - A stream event must be last+1 in the same epoch. A duplicate (seq <= last) is dropped; a gap (Redis pub/sub
 *   dropped a message, or the subscription was down) is filled from the stored history before anything newer
 *   is delivered; everything arriving meanwhile waits behind the fill, in order.
 * - `checkPositions` (run periodically) compares each room's delivered position with the stored one and fills
 *   what is missing, so a lost last message is recovered too, not only one followed by another.
 * - A connection joins a room's delivery at the position of the snapshot it was given (`attachAt`): earlier
 *   events still in flight are not delivered to it; later ones all are.
 * - The owner's fast path (`publishOwned`): an event of a room this node serves is delivered to the local members
 *   at once, through the same checks, in publish order, and goes to Redis marked with this node's id (`o`); its
 *   echo is skipped here (ClusterRooms drops a room message whose `o` is this node), so each local member gets it
 *   once, without the Redis round trip. Edges see the same messages as before (they ignore `o`).
 */
import { roomChannel } from '@watch-party/protocol'
import type { Broker, BrokerListener, BrokerMessage, StreamPosition } from '../realtime/broker.js'
import type { Logger } from '../rooms/room-ports.js'
import type { StoredStreamEvent } from '../rooms/room-store.js'
import type { ClusterBus, Header } from './cluster-bus.js'

export interface StreamHistory {
  readStream (roomId: string, afterSeq: number, limit: number): Promise<StoredStreamEvent[]>
  lastSeqs (roomIds: string[]): Promise<Map<string, number>>
}

interface RoomDelivery {
  position: StreamPosition | undefined
  /** Messages waiting behind a gap fill, in arrival order. */
  waiting: BrokerMessage[] | undefined
  /** Connections that join once the position reaches theirs. */
  pending: Array<{ connectionId: string, seq: number, subscribe: () => void }>
}

export class ClusterBroker implements Broker {
  private listener: BrokerListener | undefined
  private readonly rooms = new Map<string, RoomDelivery>()
  /** Gaps filled from the history (metrics). */
  gapsFilled = 0

  constructor (
    private readonly bus: ClusterBus,
    private readonly store: StreamHistory,
    private readonly logger: Logger
  ) {}

  subscribe (channel: string): void {
    void this.bus.subscribeRoom(roomIdOf(channel))
  }

  unsubscribe (channel: string): void {
    this.bus.unsubscribeRoom(roomIdOf(channel))
  }

  publish (message: BrokerMessage): StreamPosition | undefined {
    this.bus.publishRoom(roomIdOf(message.channel), headerOf(message), message.frame)
    return message.position
  }

  /**
   * Publishes an event of a room this node serves (the room host's sink): to the other nodes through Redis,
   * marked as this node's, and to the local members now, through the same position checks as a received event
   * (so it waits behind a gap fill in progress, and is dropped if a fill already delivered it).
   */
  publishOwned (message: BrokerMessage): StreamPosition | undefined {
    const roomId = roomIdOf(message.channel)
    const header = headerOf(message)
    header.o = this.bus.nodeId
    this.bus.publishRoom(roomId, header, message.frame)
    // A room nobody here has attached to has no delivery state: nothing to order it behind, nobody to deliver
    // it to but (at most) subscribers the hub holds outside the room's stream. An attach later starts at its
    // snapshot's position, which covers everything published until then.
    if (this.rooms.has(roomId)) this.accept(roomId, message)
    else this.listener?.(message)
    return message.position
  }

  async history (channel: string, since: StreamPosition, limit: number): Promise<BrokerMessage[]> {
    const roomId = roomIdOf(channel)
    const stored = await this.store.readStream(roomId, since.seq, limit)
    return stored.map((e) => storedMessage(roomId, since.epoch, e))
  }

  onMessage (listener: BrokerListener): void {
    this.listener = listener
  }

  async close (): Promise<void> {
    this.listener = undefined
  }

  /** A message from a room channel (the bus calls this). */
  receive (roomId: string, header: Header, body: Buffer | undefined): void {
    if (header.k !== 'ev' || body === undefined) return
    const message: BrokerMessage = {
      channel: roomChannel(roomId),
      frame: body,
      type: String(header.t),
      ...(typeof header.x === 'string' ? { exceptConnectionId: header.x } : {}),
      ...(typeof header.s === 'number' && typeof header.e === 'string' ? { position: { epoch: header.e, seq: header.s } } : {})
    }
    this.accept(roomId, message)
  }

  /**
   * Subscribes a local connection to a room's delivery from `position` (its snapshot's): now if everything up to
   * it was delivered here, else once it is.
   */
  attachAt (roomId: string, connectionId: string, position: StreamPosition, subscribe: () => void): void {
    const room = this.room(roomId)
    if (room.position === undefined || room.position.epoch !== position.epoch) room.position = { ...position }
    if (room.position.seq >= position.seq) {
      subscribe()
      return
    }
    room.pending.push({ connectionId, seq: position.seq, subscribe })
  }

  /** Forgets a room's delivery state (no local member left). */
  forget (roomId: string): void {
    this.rooms.delete(roomId)
  }

  /** Fills what the stored history has beyond each room's delivered position (a lost last message). */
  async checkPositions (): Promise<void> {
    const tracked = [...this.rooms.entries()].filter(([, r]) => r.position !== undefined && r.waiting === undefined)
    if (tracked.length === 0) return
    const stored = await this.store.lastSeqs(tracked.map(([id]) => id))
    for (const [roomId, room] of tracked) {
      const last = stored.get(roomId)
      if (last !== undefined && room.position !== undefined && last > room.position.seq && room.waiting === undefined) {
        room.waiting = []
        void this.fill(roomId, room, last)
      }
    }
  }

  private accept (roomId: string, message: BrokerMessage): void {
    const room = this.room(roomId)
    if (room.waiting !== undefined) {
      room.waiting.push(message)
      return
    }
    const at = message.position
    if (at === undefined || room.position === undefined || at.epoch !== room.position.epoch) {
      if (at !== undefined) room.position = { ...at }
      this.deliver(roomId, room, message)
      return
    }
    if (at.seq <= room.position.seq) return // a duplicate (already delivered, or filled)
    if (at.seq === room.position.seq + 1) {
      room.position.seq = at.seq
      this.deliver(roomId, room, message)
      return
    }
    room.waiting = [message]
    void this.fill(roomId, room, at.seq - 1)
  }

  /** Delivers the stored events up to `upTo`, then what waited, in order. */
  private async fill (roomId: string, room: RoomDelivery, upTo: number): Promise<void> {
    const from = room.position!
    try {
      const missed = await this.store.readStream(roomId, from.seq, upTo - from.seq)
      for (const stored of missed) {
        if (stored.seq !== room.position!.seq + 1) break
        room.position!.seq = stored.seq
        this.deliver(roomId, room, storedMessage(roomId, from.epoch, stored))
      }
      this.gapsFilled++
      this.logger.info({ roomId, from: from.seq, to: upTo, filled: missed.length }, 'stream gap filled from the history')
    } catch (err) {
      this.logger.warn({ err, roomId }, 'stream gap not filled; members will catch up on their next rejoin')
    }
    const waiting = room.waiting ?? []
    room.waiting = undefined
    for (const message of waiting) this.accept(roomId, message)
  }

  private deliver (roomId: string, room: RoomDelivery, message: BrokerMessage): void {
    this.listener?.(message)
    if (room.pending.length === 0 || room.position === undefined) return
    const ready = room.pending.filter((p) => p.seq <= room.position!.seq)
    room.pending = room.pending.filter((p) => p.seq > room.position!.seq)
    for (const p of ready) p.subscribe()
  }

  private room (roomId: string): RoomDelivery {
    let room = this.rooms.get(roomId)
    if (room === undefined) {
      room = { position: undefined, waiting: undefined, pending: [] }
      this.rooms.set(roomId, room)
    }
    return room
  }
}

function headerOf (message: BrokerMessage): Header {
  const header: Header = { k: 'ev', t: message.type }
  if (message.exceptConnectionId !== undefined) header.x = message.exceptConnectionId
  if (message.position !== undefined) {
    header.e = message.position.epoch
    header.s = message.position.seq
  }
  return header
}

function roomIdOf (channel: string): string {
  return channel.startsWith('room-') ? channel.slice(5) : channel
}

function storedMessage (roomId: string, epoch: string, stored: StoredStreamEvent): BrokerMessage {
  const frame = Buffer.from(JSON.stringify({ type: stored.type, channel: roomChannel(roomId), seq: stored.seq, epoch, data: stored.data }))
  return { channel: roomChannel(roomId), frame, type: stored.type, position: { epoch, seq: stored.seq } }
}
