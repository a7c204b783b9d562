/**
 * Which nodes are alive: each node stamps itself in a sorted set every HEARTBEAT_MS; a node not stamped for
 * DEAD_AFTER_MS is dead. Its connections then count as closed (graces start), and rooms it owned are taken over.
 *
 * Contract: `alive` answers from the last snapshot (refreshed every heartbeat), never a Redis round trip; a node
 * always counts itself alive. While Redis is unreachable the snapshot is kept as it was: nobody is declared
 * dead for want of an answer.
 */
import type { Logger } from '../rooms/room-ports.js'
import type { RedisLink } from './redis-link.js'

export const HEARTBEAT_MS = 1000
export const DEAD_AFTER_MS = 3000

export class Presence {
  private aliveNodes = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private readonly setKey: string

  constructor (private readonly redis: RedisLink, readonly nodeId: string, private readonly logger: Logger) {
    this.setKey = redis.key('nodes')
    this.aliveNodes.add(nodeId)
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
    return nodeId === this.nodeId || this.aliveNodes.has(nodeId)
  }

  private async beat (): Promise<void> {
    const now = Date.now()
    try {
      const [, , members] = await this.redis.command.multi()
        .zadd(this.setKey, now, this.nodeId)
        .zremrangebyscore(this.setKey, '-inf', now - 60_000)
        .zrangebyscore(this.setKey, now - DEAD_AFTER_MS, '+inf')
        .exec() ?? []
      const alive = members?.[1] as string[] | undefined
      if (alive !== undefined) this.aliveNodes = new Set([...alive, this.nodeId])
    } catch (err) {
      this.logger.warn({ err }, 'presence heartbeat failed')
    }
  }
}
