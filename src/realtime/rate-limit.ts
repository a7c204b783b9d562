/**
 * Rate-limit primitives: a token bucket for a rate, a flood detector that tells when a sender keeps going
 * after being refused, and a table of buckets by key that forgets a key as soon as its bucket is full again.
 * Pure: time comes from the caller.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor (private readonly perSecond: number, private readonly burst: number, now: number) {
    this.tokens = burst
    this.last = now
  }

  /** Takes one token; false when the bucket is empty (the message is refused). */
  take (now: number): boolean {
    this.refill(now)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** True when the bucket holds its whole burst at `now`: it is then indistinguishable from a new one. */
  isFull (now: number): boolean {
    this.refill(now)
    return this.tokens >= this.burst
  }

  private refill (now: number): void {
    const elapsed = Math.max(0, now - this.last)
    this.last = Math.max(this.last, now)
    this.tokens = Math.min(this.burst, this.tokens + elapsed / 1000 * this.perSecond)
  }
}

/** Counts refusals in a sliding window; `flooding` once more than `limit` fall within `windowMs`. */
export class FloodDetector {
  private readonly refusals: number[] = []

  constructor (private readonly limit: number, private readonly windowMs = 10_000) {}

  /** Records one refusal; true when the sender should be closed for flooding. */
  refuse (now: number): boolean {
    this.refusals.push(now)
    this.expire(now)
    if (this.refusals.length > this.limit + 1) this.refusals.splice(0, this.refusals.length - this.limit - 1)
    return this.refusals.length > this.limit
  }

  /** True when no refusal falls within the window any more: the detector is as good as new. */
  isQuiet (now: number): boolean {
    this.expire(now)
    return this.refusals.length === 0
  }

  private expire (now: number): void {
    while (this.refusals.length > 0 && this.refusals[0]! <= now - this.windowMs) this.refusals.shift()
  }
}

/**
 * Token buckets by key (a user, an address). A key's bucket exists only while it is not full: a sweep, run
 * at most every `sweepEveryMs` by the calls themselves (no timer), drops the full ones, so keys that went
 * quiet cost no memory. A dropped key that comes back starts full, which is exactly what it had.
 */
export class BucketTable {
  private readonly buckets = new Map<string, TokenBucket>()
  private lastSweep: number | undefined

  constructor (private readonly perSecond: number, private readonly burst: number, private readonly sweepEveryMs = 10_000) {}

  /** Takes one token of `key`'s bucket; false when it is empty. */
  take (key: string, now: number): boolean {
    this.sweep(now)
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      bucket = new TokenBucket(this.perSecond, this.burst, now)
      this.buckets.set(key, bucket)
    }
    return bucket.take(now)
  }

  /** Keys currently held in memory (tests, metrics). */
  get size (): number {
    return this.buckets.size
  }

  /**
   * Drops the keys whose bucket is full again. Runs from `take` at most every `sweepEveryMs`; `force` runs it
   * now (a caller's periodic sweep: keys that went quiet are otherwise held until the next take).
   */
  sweep (now: number, force = false): void {
    if (!force && this.lastSweep !== undefined && Math.abs(now - this.lastSweep) < this.sweepEveryMs) return
    this.lastSweep = now
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key)
  }
}
