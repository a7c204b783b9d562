/**
 * Messages between nodes over Redis pub/sub: a room's channel (its events, for every node with members in it),
 * each node's own channel (requests forwarded to an owner, their answers, and an owner's instructions for one
 * connection), and one cluster-wide channel (ownership changes).
 *
 * A message is a JSON header, a newline, and an optional body (a serialized frame, passed through as bytes).
 *
 * Contract: everything one node publishes goes out on its one command connection, so each subscriber gets it
 * in publish order across all channels (an answer before the room events published after it). Room channels
 * are subscribed while the node has local members in the room; `subscribeRoom` resolves once Redis confirmed.
 */
import type { Logger } from '../rooms/room-ports.js'
import type { RedisLink } from './redis-link.js'

export type Header = Record<string, unknown> & { k: string }
export type Handler = (header: Header, body: Buffer | undefined) => void

const NEWLINE = 0x0a

export class ClusterBus {
  private readonly roomPrefix: string
  private readonly nodeChannel: string
  private readonly clusterChannel: string
  private readonly roomRefs = new Map<string, number>()
  private onRoom: (roomId: string, header: Header, body: Buffer | undefined) => void = () => {}
  private onNode: Handler = () => {}
  private onCluster: Handler = () => {}

  constructor (private readonly redis: RedisLink, readonly nodeId: string, private readonly logger: Logger) {
    this.roomPrefix = redis.key('room', '')
    this.nodeChannel = redis.key('node', nodeId)
    this.clusterChannel = redis.key('cluster')
  }

  handle (handlers: { room: (roomId: string, header: Header, body: Buffer | undefined) => void, node: Handler, cluster: Handler }): void {
    this.onRoom = handlers.room
    this.onNode = handlers.node
    this.onCluster = handlers.cluster
  }

  async start (): Promise<void> {
    this.redis.subscriber.on('messageBuffer', (channelBuffer: Buffer, message: Buffer) => {
      try {
        this.dispatch(channelBuffer.toString(), message)
      } catch (err) {
        this.logger.error({ err }, 'cluster message could not be handled')
      }
    })
    await this.redis.subscriber.subscribe(this.nodeChannel, this.clusterChannel)
  }

  publishRoom (roomId: string, header: Header, body?: Buffer): void {
    this.publish(this.roomPrefix + roomId, header, body)
  }

  /** A message to one node; it carries `from` (the receiver learns this node is alive). */
  publishNode (nodeId: string, header: Header, body?: Buffer): void {
    this.publish(this.redis.key('node', nodeId), { ...header, from: this.nodeId }, body)
  }

  publishCluster (header: Header): void {
    this.publish(this.clusterChannel, header)
  }

  /** Counts a local interest in a room's channel; the first subscribes (resolves once Redis confirmed). */
  async subscribeRoom (roomId: string): Promise<void> {
    const refs = this.roomRefs.get(roomId) ?? 0
    this.roomRefs.set(roomId, refs + 1)
    if (refs === 0) await this.redis.subscriber.subscribe(this.roomPrefix + roomId)
  }

  /** Drops a local interest; the last unsubscribes. */
  unsubscribeRoom (roomId: string): void {
    const refs = this.roomRefs.get(roomId) ?? 0
    if (refs <= 1) {
      this.roomRefs.delete(roomId)
      if (refs === 1) void this.redis.subscriber.unsubscribe(this.roomPrefix + roomId).catch(() => {})
    } else {
      this.roomRefs.set(roomId, refs - 1)
    }
  }

  subscribedRooms (): string[] {
    return [...this.roomRefs.keys()]
  }

  private publish (channel: string, header: Header, body?: Buffer): void {
    const head = Buffer.from(JSON.stringify(header))
    const message = body === undefined ? head : Buffer.concat([head, Buffer.from([NEWLINE]), body])
    this.redis.command.publish(channel, message).catch((err: unknown) => {
      this.logger.warn({ err, channel, kind: header.k }, 'cluster message not published (Redis unreachable)')
    })
  }

  private dispatch (channel: string, message: Buffer): void {
    const cut = message.indexOf(NEWLINE)
    const header = JSON.parse((cut === -1 ? message : message.subarray(0, cut)).toString()) as Header
    const body = cut === -1 ? undefined : message.subarray(cut + 1)
    if (channel === this.nodeChannel) this.onNode(header, body)
    else if (channel === this.clusterChannel) this.onCluster(header, undefined)
    else if (channel.startsWith(this.roomPrefix)) this.onRoom(channel.slice(this.roomPrefix.length), header, body)
  }
}
