/**
 * Per-connection message limits: a token bucket for the rate, and a flood detector that tells when a
 * connection keeps sending after being refused. Pure: time comes from the caller.
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
    const elapsed = Math.max(0, now - this.last)
    this.last = now
    this.tokens = Math.min(this.burst, this.tokens + elapsed / 1000 * this.perSecond)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/** Counts refusals in a sliding window; `flooding` once more than `limit` fall within `windowMs`. */
export class FloodDetector {
  private readonly refusals: number[] = []

  constructor (private readonly limit: number, private readonly windowMs = 10_000) {}

  /** Records one refusal; true when the connection should be closed for flooding. */
  refuse (now: number): boolean {
    this.refusals.push(now)
    while (this.refusals.length > 0 && this.refusals[0]! <= now - this.windowMs) this.refusals.shift()
    if (this.refusals.length > this.limit + 1) this.refusals.splice(0, this.refusals.length - this.limit - 1)
    return this.refusals.length > this.limit
  }
}
