/**
 * The two Redis connections of a node: one for commands (leases, presence, publishing), one subscribed to the
 * node's channels. Every key and channel is under REDIS_PREFIX.
 *
 * Contract: commands fail fast while Redis is unreachable (no offline queue: a lease renewal must not succeed
 * late); the subscriber reconnects and resubscribes by itself. Publishing from the one command connection
 * keeps Redis's order: messages one node publishes, on any channels, reach each subscriber in publish order.
 */
import { Redis } from 'ioredis'
import type { ClusterConfig } from '../config.js'
import type { Logger } from '../rooms/room-ports.js'

export interface RedisLink {
  readonly command: Redis
  readonly subscriber: Redis
  /** A key or channel name under the deployment's prefix. */
  key (...parts: string[]): string
  /** True while the command connection is ready. */
  readonly ready: boolean
  close (): Promise<void>
}

export function connectRedis (config: ClusterConfig, logger: Logger): RedisLink {
  const options = {
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt: number) => Math.min(1000, 50 * attempt),
    lazyConnect: false
  }
  const command = new Redis(config.redisUrl, { ...options, enableOfflineQueue: false, connectionName: `wp-${config.nodeId}-cmd` })
  const subscriber = new Redis(config.redisUrl, { ...options, maxRetriesPerRequest: null, connectionName: `wp-${config.nodeId}-sub` })
  let warned = false
  for (const client of [command, subscriber]) {
    client.on('error', (err: Error) => {
      if (!warned) logger.warn({ err }, 'Redis unreachable; retrying')
      warned = true
    })
    client.on('ready', () => {
      if (warned) logger.info({}, 'Redis reachable again')
      warned = false
    })
  }
  return {
    command,
    subscriber,
    key: (...parts) => `${config.redisPrefix}${parts.join(':')}`,
    get ready () { return command.status === 'ready' },
    async close () {
      command.disconnect()
      subscriber.disconnect()
    }
  }
}
