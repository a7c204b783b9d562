/**
 * Connections per user across the nodes (cluster mode): MAX_CONNECTIONS_PER_USER holds for a user's connections
 * wherever they are, not per node.
 *
 * In Redis, one hash per user holds how many of the user's connections each node incarnation has (a field per
 * incarnation: the node id and a random suffix, so a node restarted under the same NODE_ID never counts its
 * previous life's connections), and one sorted set stamps each incarnation every HEARTBEAT_MS. A reservation is
 * one Lua script: it sums the fields of the incarnations stamped within DEAD_AFTER_MS (and deletes those no
 * longer in the set), refuses at the cap, else adds one to this node's field, all atomically, so two nodes
 * never both take the last place.
 *
 * Contracts:
 * - `reserve` is awaited once per connection, at the upgrade (never per message), and every place it grants is
 *   given back by one `release`.
 * - A node that dies stops counting within DEAD_AFTER_MS (+ one heartbeat); one that stops gracefully at once.
 * - Redis unreachable (or not answering within a second): `reserve` grants the place (each node's own cap,
 *   counted from its hub, still holds) and the node rewrites the counts Redis may have wrong at its next
 *   heartbeat that goes through; a refusal never comes from a missing answer.
 */
import { randomBytes } from 'node:crypto'
import { AppError } from '../errors.js'
import { userKey, type BudgetLimits } from '../realtime/user-budgets.js'
import type { Logger } from '../rooms/room-ports.js'
import { ClusterBudgets } from './cluster-budgets.js'
import { DEAD_AFTER_MS, HEARTBEAT_MS } from './presence.js'
import type { RedisLink } from './redis-link.js'

/** A user hash no node touched for this long is garbage (every live node rewrites its fields when it comes back). */
const USER_TTL_MS = 24 * 3600_000

/** The most an upgrade waits for Redis; a Redis that does not answer by then is treated as unreachable. */
const ADMIT_WAIT_MS = 1000

/** `promise`'s value, or a rejection once `ms` passed (the promise itself goes on). */
async function within<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`Redis did not answer within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}

const RESERVE = `
local fields = redis.call('hgetall', KEYS[1])
local now, dead = tonumber(ARGV[3]), tonumber(ARGV[4])
local total = 0
for i = 1, #fields, 2 do
  local holder, n = fields[i], tonumber(fields[i + 1])
  if holder == ARGV[1] then
    total = total + n
  else
    local beat = redis.call('zscore', KEYS[2], holder)
    if not beat then redis.call('hdel', KEYS[1], holder)
    elseif tonumber(beat) >= now - dead then total = total + n end
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('hincrby', KEYS[1], ARGV[1], 1)
redis.call('pexpire', KEYS[1], ARGV[5])
return 1`

const RELEASE = `
if redis.call('hincrby', KEYS[1], ARGV[1], -1) <= 0 then redis.call('hdel', KEYS[1], ARGV[1]) end
return 1`

export class ClusterConnections {
  /** This node's connections (granted or being granted) per user: what its fields in Redis must say. */
  private readonly held = new Map<string, number>()
  private readonly incarnation: string
  private readonly nodesKey: string
  private timer: NodeJS.Timeout | undefined
  /** Users whose count in Redis may be wrong (Redis missed a change): the next heartbeat rewrites them. */
  private readonly stale = new Set<string>()

  constructor (private readonly redis: RedisLink, nodeId: string, private readonly maxPerUser: number, private readonly logger: Logger) {
    this.incarnation = `${nodeId}/${randomBytes(4).toString('hex')}`
    this.nodesKey = redis.key('user-conns', 'nodes')
    // Whatever happened while Redis was away (a restart lost everything, or others dropped a node they thought dead).
    redis.command.on('ready', () => { for (const userId of this.held.keys()) this.stale.add(userId) })
  }

  async start (): Promise<void> {
    await this.beat()
    this.timer = setInterval(() => { void this.beat() }, HEARTBEAT_MS)
    this.timer.unref()
  }

  /** Leaves at once: the other nodes stop counting this node's connections. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    await this.redis.command.zrem(this.nodesKey, this.incarnation).catch(() => {})
  }

  /** Takes a place for one more connection of `userId`; false when the user holds MAX_CONNECTIONS_PER_USER already. */
  async reserve (userId: string): Promise<boolean> {
    this.held.set(userId, (this.held.get(userId) ?? 0) + 1)
    let granted: boolean
    try {
      const answer = this.redis.command.eval(RESERVE, 2, this.userKey(userId), this.nodesKey,
        this.incarnation, this.maxPerUser, Date.now(), DEAD_AFTER_MS, USER_TTL_MS)
      granted = await within(answer, ADMIT_WAIT_MS) === 1
    } catch (err) {
      this.logger.warn({ err, userId }, 'connections per user could not be counted cluster-wide; this node counts alone')
      this.stale.add(userId)
      return true
    }
    if (!granted) this.forget(userId)
    return granted
  }

  /** Gives back a place `reserve` granted. */
  release (userId: string): void {
    this.forget(userId)
    this.redis.command.eval(RELEASE, 1, this.userKey(userId), this.incarnation).catch(() => { this.stale.add(userId) })
  }

  private forget (userId: string): void {
    const left = (this.held.get(userId) ?? 1) - 1
    if (left > 0) this.held.set(userId, left)
    else this.held.delete(userId)
  }

  private userKey (userId: string): string {
    return this.redis.key('user-conns', userId)
  }

  private async beat (): Promise<void> {
    const now = Date.now()
    const rewrite = [...this.stale]
    this.stale.clear()
    try {
      const batch = this.redis.command.multi()
        .zadd(this.nodesKey, now, this.incarnation)
        .zremrangebyscore(this.nodesKey, '-inf', now - 60_000)
      for (const userId of rewrite) {
        const count = this.held.get(userId) ?? 0
        if (count > 0) batch.hset(this.userKey(userId), this.incarnation, count).pexpire(this.userKey(userId), USER_TTL_MS)
        else batch.hdel(this.userKey(userId), this.incarnation)
      }
      await batch.exec()
    } catch (err) {
      for (const userId of rewrite) this.stale.add(userId)
      this.logger.warn({ err }, 'connections per user: heartbeat failed')
    }
  }
}

/**
 * The per-user limits of one node in cluster mode, as the app wires them: the budgets (a UserBudgets) and the
 * upgrade's admission (a place among the user's connections, and the user's budgets read from the cluster).
 */
export class ClusterUserLimits {
  readonly budgets: ClusterBudgets
  readonly connections: ClusterConnections

  constructor (redis: RedisLink, nodeId: string, limits: BudgetLimits & { maxConnectionsPerUser: number }, logger: Logger, now?: () => number) {
    this.budgets = new ClusterBudgets({ redis, limits, logger, ...(now === undefined ? {} : { now }) })
    this.connections = new ClusterConnections(redis, nodeId, limits.maxConnectionsPerUser, logger)
    this.maxPerUser = limits.maxConnectionsPerUser
  }

  private readonly maxPerUser: number

  async start (): Promise<void> {
    this.budgets.start()
    await this.connections.start()
  }

  async stop (): Promise<void> {
    await this.budgets.stop()
    await this.connections.stop()
  }

  /** What the upgrade awaits for an authenticated user: a release for the TCP connection's close, or the refusal. */
  async admit (userId: string): Promise<{ release: () => void } | AppError> {
    const [granted] = await Promise.all([
      this.connections.reserve(userId),
      within(this.budgets.prime(userKey(userId)), ADMIT_WAIT_MS).catch(() => {})
    ])
    if (!granted) return new AppError('RATE_LIMITED', `too many connections for this user across the nodes (at most ${this.maxPerUser}); retry later`)
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.connections.release(userId)
      }
    }
  }
}
