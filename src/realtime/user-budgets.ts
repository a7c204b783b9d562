/**
 * What one user (or, before there is an identity, one client address) may spend, whatever the number of
 * connections it spreads the spending over: the budgets belong to the key, not to a socket, so closing and
 * reopening connections never refills them.
 *
 * Contract of UserBudgets:
 * - Every method answers synchronously from state this process holds: a message is never delayed by a
 *   network round trip. A cluster-wide implementation keeps local buckets like MemoryUserBudgets and
 *   reconciles them with the other nodes in the background (e.g. through Redis, every few hundred
 *   milliseconds), so a user's ceiling holds across nodes within that reconciliation lag.
 * - A key's state exists only while it differs from a fresh key's (a bucket not yet full again, refusals
 *   still inside the flood window): idle users cost nothing.
 * - `now` is epoch ms from the caller's clock; nothing here reads time or starts timers.
 */
import { BucketTable, FloodDetector } from './rate-limit.js'

/** `ok`: handle it; `refused`: answer RATE_LIMITED and drop it; `flooding`: close the connection with 4429. */
export type MessageVerdict = 'ok' | 'refused' | 'flooding'

/** Whose budget a charge goes to. */
export type BudgetKey = `user:${string}` | `address:${string}`

export const userKey = (userId: string): BudgetKey => `user:${userId}`
export const addressKey = (address: string): BudgetKey => `address:${address}`

export interface UserBudgets {
  /** Charges one inbound WebSocket message. */
  message (key: BudgetKey, now: number): MessageVerdict
  /** Charges one membership request (create_room, join_room, leave_room); false: refuse it with RATE_LIMITED. */
  membershipWrite (key: BudgetKey, now: number): boolean
  /** Charges one connection attempt (a user's after authentication, an address's before); false: close with 1013. */
  connect (key: BudgetKey, now: number): boolean
  /**
   * Forgets the keys whose state is as good as new at `now`. Optional; the realtime layer calls it once per
   * heartbeat, so that the keys of users who went quiet (e.g. idle connections) are not held until their next charge.
   */
  sweep? (now: number): void
}

export interface BudgetLimits {
  wsMessagesPerSecond: number
  wsMessageBurst: number
  wsFloodLimit: number
  wsMembershipWritesPerSecond: number
  wsMembershipWriteBurst: number
  wsConnectsPerUserPerMinute: number
  wsConnectsPerAddressPerMinute: number
}

/** Flood windows are 10 s; the sweep of quiet detectors runs at most that often. */
const FLOOD_WINDOW_MS = 10_000

/** The budgets of one process, in memory. */
export class MemoryUserBudgets implements UserBudgets {
  private readonly messages: BucketTable
  private readonly memberships: BucketTable
  private readonly userConnects: BucketTable
  private readonly addressConnects: BucketTable
  private readonly floods = new Map<BudgetKey, FloodDetector>()
  private lastFloodSweep: number | undefined

  constructor (private readonly limits: BudgetLimits) {
    this.messages = new BucketTable(limits.wsMessagesPerSecond, limits.wsMessageBurst)
    this.memberships = new BucketTable(limits.wsMembershipWritesPerSecond, limits.wsMembershipWriteBurst)
    this.userConnects = new BucketTable(limits.wsConnectsPerUserPerMinute / 60, limits.wsConnectsPerUserPerMinute)
    this.addressConnects = new BucketTable(limits.wsConnectsPerAddressPerMinute / 60, limits.wsConnectsPerAddressPerMinute)
  }

  message (key: BudgetKey, now: number): MessageVerdict {
    this.sweepFloods(now)
    if (this.messages.take(key, now)) return 'ok'
    let flood = this.floods.get(key)
    if (flood === undefined) {
      flood = new FloodDetector(this.limits.wsFloodLimit, FLOOD_WINDOW_MS)
      this.floods.set(key, flood)
    }
    return flood.refuse(now) ? 'flooding' : 'refused'
  }

  membershipWrite (key: BudgetKey, now: number): boolean {
    return this.memberships.take(key, now)
  }

  connect (key: BudgetKey, now: number): boolean {
    return (key.startsWith('address:') ? this.addressConnects : this.userConnects).take(key, now)
  }

  sweep (now: number): void {
    for (const table of [this.messages, this.memberships, this.userConnects, this.addressConnects]) table.sweep(now, true)
    this.sweepFloods(now, true)
  }

  /** Keys held in memory, by budget (tests: idle keys must cost nothing). */
  get held (): { messages: number, memberships: number, connects: number, floods: number } {
    return {
      messages: this.messages.size,
      memberships: this.memberships.size,
      connects: this.userConnects.size + this.addressConnects.size,
      floods: this.floods.size
    }
  }

  private sweepFloods (now: number, force = false): void {
    if (!force && this.lastFloodSweep !== undefined && Math.abs(now - this.lastFloodSweep) < FLOOD_WINDOW_MS) return
    this.lastFloodSweep = now
    for (const [key, flood] of this.floods) if (flood.isQuiet(now)) this.floods.delete(key)
  }
}

/** Requests that each write membership to the database (with an audit row): charged to membershipWrite. */
export const MEMBERSHIP_REQUESTS: ReadonlySet<string> = new Set(['create_room', 'join_room', 'leave_room'])
