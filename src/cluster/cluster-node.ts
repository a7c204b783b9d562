/**
 * One node of a cluster (REDIS_URL set), assembled: its Redis link, presence, leases, bus, broker and router.
 * The app builds it before the room host (whose writes it fences and whose rooms it decides) and binds the
 * host to it after.
 */
import type { ClusterConfig } from '../config.js'
import type { Metrics } from '../metrics.js'
import type { RoomHost } from '../rooms/room-host.js'
import type { Logger, Ownership } from '../rooms/room-ports.js'
import type { RoomRepository } from '../rooms/room-repository.js'
import { ClusterBroker } from './cluster-broker.js'
import { ClusterBus } from './cluster-bus.js'
import { ClusterRooms } from './cluster-rooms.js'
import { Leases } from './leases.js'
import { Presence } from './presence.js'
import { connectRedis, type RedisLink } from './redis-link.js'

export class ClusterNode {
  readonly redis: RedisLink
  readonly presence: Presence
  readonly leases: Leases
  readonly bus: ClusterBus
  readonly broker: ClusterBroker
  private routerValue: ClusterRooms | undefined

  constructor (readonly config: ClusterConfig, store: RoomRepository, private readonly logger: Logger) {
    this.redis = connectRedis(config, logger)
    this.presence = new Presence(this.redis, config.nodeId, logger)
    this.leases = new Leases(this.redis, store, config.nodeId, config.roomLeaseMs, (roomId, why) => {
      logger.warn({ roomId, why }, 'room lease lost; this node stops serving the room')
      this.routerValue?.lost(roomId)
    }, logger)
    this.bus = new ClusterBus(this.redis, config.nodeId, logger)
    this.broker = new ClusterBroker(this.bus, store, logger)
    this.store = store
  }

  private readonly store: RoomRepository

  /** What the room host asks of ownership; valid once bound. */
  readonly ownership: Ownership = {
    loadAllAtStart: false,
    owns: (roomId) => this.leases.tokenOf(roomId) !== undefined,
    claimCreated: async (roomId) => { await this.router.claimCreated(roomId) },
    fencedOut: (roomId) => { this.router.fencedOut(roomId) }
  }

  /** The fencing token of a room this node serves (every write carries it). */
  fenceOf (roomId: string): number | undefined {
    return this.leases.tokenOf(roomId)
  }

  bind (host: RoomHost, metrics: Metrics): ClusterRooms {
    this.routerValue = new ClusterRooms(host, this.bus, this.broker, this.leases, this.presence, this.store, {
      forwarded: (op, seconds, ok) => { metrics.forwarded.observe({ op, outcome: ok ? 'ok' : 'failed' }, seconds) },
      takeover: () => { metrics.takeovers.inc() }
    }, this.logger)
    return this.routerValue
  }

  get router (): ClusterRooms {
    if (this.routerValue === undefined) throw new Error('the cluster node is not bound to a room host yet')
    return this.routerValue
  }

  async start (): Promise<void> {
    await this.router.start()
  }

  /** Hands this node's rooms over (before its sockets close with 1012). */
  async handOver (): Promise<void> {
    await this.router.handOver()
  }

  async stop (): Promise<void> {
    await this.router.stop()
    await this.redis.close()
  }
}
