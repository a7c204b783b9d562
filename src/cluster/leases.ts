/**
 * Room ownership: a lease in Redis (who serves the room now) and a fencing token in PostgreSQL (which of the
 * room's owners a write comes from).
 *
 * Contracts:
 * - At most one node holds a room's lease: SET NX with a time to live of ROOM_LEASE_MS, renewed every third of
 *   it, released (only by its holder) on a graceful stop.
 * - Winning the lease is followed by a claim in PostgreSQL that raises the room's token; every write of the
 *   owner carries the token it claimed with, so an ex-owner (paused, partitioned, or one whose lease Redis lost)
 *   can never overwrite the new owner: its writes change nothing and it drops the room.
 * - A node that cannot renew a lease stops serving the room before the lease can be taken by another: when a
 *   renewal answers "not yours", at once; when Redis does not answer, once two thirds of the lease have passed
 *   since the last renewal that succeeded.
 * - The token only rises: it lives in PostgreSQL, which a Redis restart does not touch.
 */
import type { Logger } from '../rooms/room-ports.js'
import type { RedisLink } from './redis-link.js'

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

export interface LeaseClaims {
  /** Raises the room's token for this node; null when the room is not active. */
  claimRoom (roomId: string, nodeId: string): Promise<number | null>
}

interface Held {
  token: number
}

export class Leases {
  private readonly held = new Map<string, Held>()
  private timer: NodeJS.Timeout | undefined
  private lastRenewedAt = Date.now()

  constructor (
    private readonly redis: RedisLink,
    private readonly claims: LeaseClaims,
    readonly nodeId: string,
    private readonly leaseMs: number,
    private readonly onLost: (roomId: string, why: string) => void,
    private readonly logger: Logger
  ) {}

  start (): void {
    this.timer = setInterval(() => { void this.renewAll() }, Math.max(100, Math.floor(this.leaseMs / 3)))
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** The token this node holds a room with, or undefined when it does not hold it. */
  tokenOf (roomId: string): number | undefined {
    return this.held.get(roomId)?.token
  }

  get count (): number {
    return this.held.size
  }

  rooms (): string[] {
    return [...this.held.keys()]
  }

  /** Who holds the room's lease now (null: nobody). */
  async holder (roomId: string): Promise<string | null> {
    return await this.redis.command.get(this.leaseKey(roomId))
  }

  /**
   * Tries to become the room's owner: the lease, then the claim. Answers the token, or undefined when another
   * node holds the lease or the room is not active.
   */
  async acquire (roomId: string): Promise<number | undefined> {
    const mine = this.held.get(roomId)
    if (mine !== undefined) return mine.token
    const won = await this.redis.command.set(this.leaseKey(roomId), this.nodeId, 'PX', this.leaseMs, 'NX')
    if (won !== 'OK') return undefined
    let token: number | null
    try {
      token = await this.claims.claimRoom(roomId, this.nodeId)
    } catch (err) {
      await this.release(roomId)
      throw err
    }
    if (token === null) {
      await this.release(roomId)
      return undefined
    }
    this.held.set(roomId, { token })
    return token
  }

  /** Gives the lease up (a graceful stop, or the room closed); nothing if this node does not hold it. */
  async release (roomId: string): Promise<void> {
    this.held.delete(roomId)
    await this.redis.command.eval(RELEASE, 1, this.leaseKey(roomId), this.nodeId).catch((err: unknown) => {
      this.logger.warn({ err, roomId }, 'lease not released; it expires by itself')
    })
  }

  /** Forgets a room without touching Redis (it was lost or fenced out). */
  forget (roomId: string): void {
    this.held.delete(roomId)
  }

  private async renewAll (): Promise<void> {
    const rooms = this.rooms()
    if (rooms.length === 0) {
      this.lastRenewedAt = Date.now()
      return
    }
    const startedAt = Date.now()
    try {
      const pipeline = this.redis.command.pipeline()
      for (const roomId of rooms) pipeline.eval(RENEW, 1, this.leaseKey(roomId), this.nodeId, this.leaseMs)
      const results = await pipeline.exec() ?? []
      results.forEach(([err, renewed], i) => {
        const roomId = rooms[i]!
        if (err === null && Number(renewed) === 1) return
        if (err === null) this.lose(roomId, 'its lease is held by another node')
      })
      if (results.every(([err]) => err === null)) this.lastRenewedAt = startedAt
    } catch (err) {
      this.logger.warn({ err, rooms: rooms.length }, 'leases not renewed')
    }
    if (Date.now() - this.lastRenewedAt > this.leaseMs * 2 / 3) {
      for (const roomId of this.rooms()) this.lose(roomId, 'its lease could not be renewed in time (Redis unreachable)')
    }
  }

  private lose (roomId: string, why: string): void {
    if (!this.held.delete(roomId)) return
    this.onLost(roomId, why)
  }

  private leaseKey (roomId: string): string {
    return this.redis.key('lease', roomId)
  }
}
