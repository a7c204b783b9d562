/**
 * NTP-style estimate of the offset between the local clock and the server's, from `ping {clientTime}` →
 * `pong {clientTime, serverTime}` round trips.
 *
 * Contract: with a symmetric path, `serverTime` was read about half-way through the round trip, so
 * `offset = serverTime - (sent + received) / 2`, wrong by at most half the round trip. Queueing makes round
 * trips longer and asymmetric, so the estimate is the mean offset of the `best` samples with the shortest
 * round trip among the last `window`.
 */
export interface ClockSample {
  /** server clock - local clock, ms */
  offset: number
  /** round trip, ms */
  rtt: number
}

export interface ClockEstimate {
  offset: number
  /** The shortest round trip among the samples used: the estimate is within half of it. */
  rtt: number
  samples: number
}

export class ClockEstimator {
  private samples: ClockSample[] = []

  constructor (private readonly window = 15, private readonly best = 3) {}

  add (sentAt: number, serverTime: number, receivedAt: number): void {
    const rtt = receivedAt - sentAt
    if (!Number.isFinite(rtt) || rtt < 0 || !Number.isFinite(serverTime)) return
    this.samples.push({ offset: serverTime - (sentAt + receivedAt) / 2, rtt })
    if (this.samples.length > this.window) this.samples.splice(0, this.samples.length - this.window)
  }

  /** Forget every sample (the connection changed: a new server may have another clock). */
  clear (): void {
    this.samples = []
  }

  get estimate (): ClockEstimate | undefined {
    if (this.samples.length === 0) return undefined
    const chosen = [...this.samples].sort((a, b) => a.rtt - b.rtt).slice(0, this.best)
    return {
      offset: chosen.reduce((sum, s) => sum + s.offset, 0) / chosen.length,
      rtt: chosen[0]!.rtt,
      samples: this.samples.length
    }
  }
}
