/**
 * A latency histogram with logarithmic buckets (1 % wide), in microseconds. Cheap to record, small to send
 * between processes, and exact to merge: percentiles are within 1 % of the true value; min and max are exact.
 */
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
/** Buckets up to GROWTH^BUCKETS microseconds: about 30 minutes. */
const BUCKETS = 2200

export interface HistogramJson {
  counts: Array<[number, number]>
  count: number
  sum: number
  min: number
  max: number
}

export interface Summary {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
}

export class Histogram {
  private counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  min = Infinity
  max = 0

  record (us: number): void {
    const v = us < 1 ? 1 : us
    let index = Math.floor(Math.log(v) / LOG_GROWTH)
    if (index >= BUCKETS) index = BUCKETS - 1
    this.counts[index]!++
    this.count++
    this.sum += us
    if (us < this.min) this.min = us
    if (us > this.max) this.max = us
  }

  reset (): void {
    this.counts = new Float64Array(BUCKETS)
    this.count = 0
    this.sum = 0
    this.min = Infinity
    this.max = 0
  }

  merge (other: Histogram | HistogramJson): this {
    const json = other instanceof Histogram ? other.toJSON() : other
    for (const [index, n] of json.counts) this.counts[index]! += n
    this.count += json.count
    this.sum += json.sum
    if (json.count > 0) {
      this.min = Math.min(this.min, json.min)
      this.max = Math.max(this.max, json.max)
    }
    return this
  }

  /** The value at percentile `p` (0-100), in microseconds: the middle of its bucket, clipped to [min, max]. */
  percentile (p: number): number {
    if (this.count === 0) return NaN
    const rank = Math.max(1, Math.ceil((p / 100) * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, GROWTH ** (i + 0.5)))
    }
    return this.max
  }

  /** Percentiles in milliseconds. */
  summaryMs (): Summary {
    const ms = (us: number): number => Math.round(us) / 1000
    return {
      count: this.count,
      p50: ms(this.percentile(50)),
      p95: ms(this.percentile(95)),
      p99: ms(this.percentile(99)),
      max: ms(this.count === 0 ? NaN : this.max),
      mean: ms(this.count === 0 ? NaN : this.sum / this.count)
    }
  }

  toJSON (): HistogramJson {
    const counts: Array<[number, number]> = []
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) counts.push([i, this.counts[i]!])
    return { counts, count: this.count, sum: this.sum, min: this.min, max: this.max }
  }

  static from (json: HistogramJson): Histogram {
    return new Histogram().merge(json)
  }
}

/** Monotonic microseconds from CLOCK_MONOTONIC: the same clock in every process on this machine. */
export function nowUs (): number {
  const t = process.hrtime()
  return t[0] * 1e6 + t[1] / 1e3
}
