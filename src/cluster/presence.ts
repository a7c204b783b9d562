/**
 * Which nodes are alive: each node stamps itself in a sorted set every HEARTBEAT_MS; a node not stamped for
 * DEAD_AFTER_MS is dead. Its connections then count as closed (graces start), and rooms it owned are taken over.
 *
 * Contract: `alive` answers from what this node last saw of the other (its heartbeat in the last snapshot,
 * refreshed every HEARTBEAT_MS, or a message from it, `heard`), never a Redis round trip; a node always counts
 * itself alive. A node that has just started may not be in the snapshot yet, but any node that sent this one a
 * request has been heard. While Redis is unreachable the snapshot is kept as it was: nobody is declared dead
 * for want of an answer.
 */
import type { Logger } from '../rooms/room-ports.js'
import type { RedisLink } from './redis-link.js'

export const HEARTBEAT_MS = 1000
export const DEAD_AFTER_MS = 3000

export class Presence {
  /** When each node was last seen alive (epoch ms): its heartbeat's score, or a message from it. */
  private readonly lastSeen = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private readonly setKey: string

  constructor (private readonly redis: RedisLink, readonly nodeId: string, private readonly logger: Logger) {
    this.setKey = redis.key('nodes')
  }

  async start (): Promise<void> {
    await this.beat()
    this.timer = setInterval(() => { void this.beat() }, HEARTBEAT_MS)
    this.timer.unref()
  }

  /** Leaves the set at once, so others need not wait DEAD_AFTER_MS (a graceful stop). */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.redis.command.zrem(this.setKey, this.nodeId).catch(() => {})
  }

  alive (nodeId: string): boolean {
    return nodeId === this.nodeId || (this.lastSeen.get(nodeId) ?? -Infinity) > Date.now() - DEAD_AFTER_MS
  }

  /** A message from `nodeId` arrived: it is alive now. */
  heard (nodeId: string): void {
    const seen = this.lastSeen.get(nodeId) ?? 0
    this.lastSeen.set(nodeId, Math.max(seen, Date.now()))
  }

  private async beat (): Promise<void> {
    const now = Date.now()
    try {
      const [, , members] = await this.redis.command.multi()
        .zadd(this.setKey, now, this.nodeId)
        .zremrangebyscore(this.setKey, '-inf', now - 60_000)
        .zrangebyscore(this.setKey, now - 60_000, '+inf', 'WITHSCORES')
        .exec() ?? []
      const flat = members?.[1] as string[] | undefined
      for (let i = 0; flat !== undefined && i + 1 < flat.length; i += 2) {
        const node = flat[i]!
        const at = Number(flat[i + 1])
        if (at > (this.lastSeen.get(node) ?? 0)) this.lastSeen.set(node, at)
      }
    } catch (err) {
      this.logger.warn({ err }, 'presence heartbeat failed')
    }
  }
}
