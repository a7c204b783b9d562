/**
 * The per-user budgets of UserBudgets held across the nodes (cluster mode): a user's message bucket, membership
 * bucket, connection-attempt bucket and flood counter are one each cluster-wide, however the user spreads their
 * connections over the nodes, and a reconnect to another node refills nothing.
 *
 * How: Redis holds each active user's buckets (their levels and when they were last refilled) and their
 * refusals per second over the 10 s flood window, in one hash per user. Every node answers each message from its
 * local copy of the user's buckets (no round trip), and every SYNC_MS reports what the user spent and was refused
 * here since its last report (one report in flight per user at a time), in one Lua script that refills the
 * buckets, subtracts the spending of this node and answers the levels left for the whole cluster; the node's copy
 * becomes that level minus what it spent since. A node that sees a user for the first time (a new connection)
 * reads the user's levels before the connection is accepted (`prime`).
 *
 * Contracts (beyond UserBudgets'):
 * - A user gets at most the documented ceiling across the cluster, plus what the nodes could spend between two
 *   reports (at most one SYNC_MS of each other node's view, never more than one burst each); an overspend
 *   becomes a debt the user pays back before anything more is admitted, so over time the rate holds exactly.
 * - A node holds a user only while its copy differs from a fresh one or has something to report; Redis keeps a
 *   user's hash only until its buckets would be full again.
 * - Redis unreachable: each node goes on with its own copies (the ceilings then hold per node); what a report
 *   could not carry is forgiven, not charged later (the user kept each node's ceiling meanwhile).
 * - Connection attempts per address stay per node (an address reaches the cluster through one load balancer
 *   connection pool, and counting it needs no agreement between nodes).
 */
import type { Logger } from '../rooms/room-ports.js'
import { BucketTable, FloodDetector } from '../realtime/rate-limit.js'
import type { BudgetKey, BudgetLimits, MessageVerdict, UserBudgets } from '../realtime/user-budgets.js'
import type { RedisLink } from './redis-link.js'

/** How often a node reports its users' spending and reads back the cluster's levels. */
export const SYNC_MS = 250
const FLOOD_WINDOW_MS = 10_000

const BUCKETS = ['messages', 'memberships', 'connects'] as const
type BucketName = typeof BUCKETS[number]

/*
 * KEYS[1]: the user's hash. ARGV: now, refused, flood window ms, then per bucket: name, spent, rate, burst.
 * The hash lives until its fullest-to-be bucket is full again and its refusals are out of the window.
 * Answers each bucket's level after the spending, then the refusals of the flood window (counted per second, in
 * fields f<epoch second>). Only a report that spends or is refused writes: reading a user stores nothing.
 */
const SYNC = `
local now, refused, fw = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = fw + 1000
local h = {}
local flat = redis.call('hgetall', KEYS[1])
for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
local out, writes, spentAny = {}, {}, refused > 0
for i = 4, #ARGV, 4 do
  local name, spent, rate, burst = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local level, at = tonumber(h[name]), tonumber(h[name .. '@'])
  if level == nil or at == nil then level, at = burst, now end
  if now > at then
    level = math.min(burst, level + (now - at) / 1000 * rate)
    at = now
  end
  if spent > 0 then spentAny = true end
  level = level - spent
  ttl = math.max(ttl, math.ceil((burst - level) / rate * 1000) + 1000)
  out[#out + 1] = tostring(level)
  writes[#writes + 1] = name
  writes[#writes + 1] = tostring(level)
  writes[#writes + 1] = name .. '@'
  writes[#writes + 1] = tostring(at)
end
local second, seconds, refusals = math.floor(now / 1000), fw / 1000, 0
for field, value in pairs(h) do
  local at = tonumber(string.match(field, '^f(%d+)$'))
  if at ~= nil then
    if at > second - seconds then refusals = refusals + tonumber(value)
    else redis.call('hdel', KEYS[1], field) end
  end
end
out[#out + 1] = tostring(refusals + refused)
if refused > 0 then redis.call('hincrby', KEYS[1], 'f' .. second, refused) end
if spentAny then
  redis.call('hset', KEYS[1], unpack(writes))
  redis.call('pexpire', KEYS[1], ttl)
end
return out`

/** One bucket's local copy: the cluster's level as last read, minus what this node spent since, refilled locally. */
class CopiedBucket {
  tokens: number
  last: number
  /** Spent here, not reported yet. */
  unreported = 0
  /** Reported in scripts whose answers have not come back yet. */
  inFlight = 0

  constructor (private readonly perSecond: number, private readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  take (now: number): boolean {
    this.refill(now)
    if (this.tokens < 1) return false
    this.tokens -= 1
    this.unreported += 1
    return true
  }

  /** The cluster's level at `at`, after every report up to the one that carried `reported`. */
  adopt (level: number, at: number, reported: number): void {
    this.inFlight -= reported
    this.tokens = Math.min(this.burst, level - this.inFlight - this.unreported)
    this.last = at
  }

  isFresh (now: number): boolean {
    this.refill(now)
    return this.tokens >= this.burst && this.unreported === 0 && this.inFlight === 0
  }

  private refill (now: number): void {
    const elapsed = Math.max(0, now - this.last)
    this.last = Math.max(this.last, now)
    this.tokens = Math.min(this.burst, this.tokens + elapsed / 1000 * this.perSecond)
  }
}

interface UserState {
  buckets: Record<BucketName, CopiedBucket>
  flood: FloodDetector
  refusedUnreported: number
  refusedInFlight: number
  /** The cluster's flood count as last read, and when. */
  clusterRefusals: number
  clusterRefusalsAt: number
  /** Scripts in flight for this user. */
  pending: number
}

export interface ClusterBudgetsOptions {
  redis: RedisLink
  limits: BudgetLimits
  logger: Logger
  /** Epoch ms; the clock the callers pass their `now` from. */
  now?: () => number
}

export class ClusterBudgets implements UserBudgets {
  private readonly users = new Map<BudgetKey, UserState>()
  private readonly addressConnects: BucketTable
  private readonly rates: Record<BucketName, { perSecond: number, burst: number }>
  private readonly now: () => number
  private timer: NodeJS.Timeout | undefined
  private warned = false

  constructor (private readonly options: ClusterBudgetsOptions) {
    const { limits } = options
    this.now = options.now ?? Date.now
    this.rates = {
      messages: { perSecond: limits.wsMessagesPerSecond, burst: limits.wsMessageBurst },
      memberships: { perSecond: limits.wsMembershipWritesPerSecond, burst: limits.wsMembershipWriteBurst },
      connects: { perSecond: limits.wsConnectsPerUserPerMinute / 60, burst: limits.wsConnectsPerUserPerMinute }
    }
    this.addressConnects = new BucketTable(limits.wsConnectsPerAddressPerMinute / 60, limits.wsConnectsPerAddressPerMinute)
  }

  start (): void {
    this.timer = setInterval(() => { this.reportAll() }, SYNC_MS)
    this.timer.unref()
  }

  /** Reports what is left to report (a graceful stop), then stops. */
  async stop (): Promise<void> {
    clearInterval(this.timer)
    await Promise.all([...this.users.keys()].map(async (key) => { await this.report(key) }))
  }

  message (key: BudgetKey, now: number): MessageVerdict {
    const user = this.user(key, now)
    if (user.buckets.messages.take(now)) return 'ok'
    user.refusedUnreported += 1
    const local = user.flood.refuse(now)
    const cluster = now - user.clusterRefusalsAt < FLOOD_WINDOW_MS &&
      user.clusterRefusals + user.refusedInFlight + user.refusedUnreported > this.options.limits.wsFloodLimit
    return local || cluster ? 'flooding' : 'refused'
  }

  membershipWrite (key: BudgetKey, now: number): boolean {
    return this.user(key, now).buckets.memberships.take(now)
  }

  connect (key: BudgetKey, now: number): boolean {
    if (key.startsWith('address:')) return this.addressConnects.take(key, now)
    return this.user(key, now).buckets.connects.take(now)
  }

  /**
   * Reads the user's levels from the cluster into this node's copy. Awaited before a new connection of the user
   * is accepted, so that a reconnect to another node starts from what the user has left, not from a full bucket.
   */
  async prime (key: BudgetKey): Promise<void> {
    this.user(key, this.now())
    await this.report(key)
  }

  /** Users held in memory (tests: idle users must cost nothing). */
  get held (): number {
    return this.users.size
  }

  private user (key: BudgetKey, now: number): UserState {
    let user = this.users.get(key)
    if (user === undefined) {
      const bucket = (name: BucketName): CopiedBucket => new CopiedBucket(this.rates[name].perSecond, this.rates[name].burst, now)
      user = {
        buckets: { messages: bucket('messages'), memberships: bucket('memberships'), connects: bucket('connects') },
        flood: new FloodDetector(this.options.limits.wsFloodLimit, FLOOD_WINDOW_MS),
        refusedUnreported: 0,
        refusedInFlight: 0,
        clusterRefusals: 0,
        clusterRefusalsAt: 0,
        pending: 0
      }
      this.users.set(key, user)
    }
    return user
  }

  private reportAll (): void {
    const now = this.now()
    for (const [key, user] of this.users) {
      const active = user.refusedUnreported > 0 || BUCKETS.some((b) => user.buckets[b].unreported > 0)
      if (active) {
        if (user.pending === 0) void this.report(key)
        continue
      }
      // Nothing to say and nothing that differs from a fresh user: forget it (the cluster's copy is in Redis).
      const quiet = user.pending === 0 && user.flood.isQuiet(now) && now - user.clusterRefusalsAt >= FLOOD_WINDOW_MS
      if (quiet && BUCKETS.every((b) => user.buckets[b].isFresh(now))) this.users.delete(key)
    }
  }

  private async report (key: BudgetKey): Promise<void> {
    const user = this.users.get(key)
    if (user === undefined) return
    const at = this.now()
    const spent = BUCKETS.map((b) => {
      const bucket = user.buckets[b]
      const n = bucket.unreported
      bucket.unreported = 0
      bucket.inFlight += n
      return n
    })
    const refused = user.refusedUnreported
    user.refusedUnreported = 0
    user.refusedInFlight += refused
    user.pending += 1
    const args: Array<string | number> = [at, refused, FLOOD_WINDOW_MS]
    BUCKETS.forEach((b, i) => { args.push(b, spent[i]!, this.rates[b].perSecond, this.rates[b].burst) })
    try {
      const answer = await this.options.redis.command.eval(SYNC, 1, this.options.redis.key('budget', key), ...args) as string[]
      BUCKETS.forEach((b, i) => { user.buckets[b].adopt(Number(answer[i]), at, spent[i]!) })
      user.refusedInFlight -= refused
      user.clusterRefusals = Number(answer[BUCKETS.length])
      user.clusterRefusalsAt = at
      this.warned = false
    } catch (err) {
      // Not reported, and forgiven: the local copies went on alone meanwhile, as one process's buckets do.
      BUCKETS.forEach((b, i) => { user.buckets[b].inFlight -= spent[i]! })
      user.refusedInFlight -= refused
      if (!this.warned) this.options.logger.warn({ err }, 'per-user budgets could not be reconciled through Redis; each node counts alone meanwhile')
      this.warned = true
    } finally {
      user.pending -= 1
    }
  }
}
