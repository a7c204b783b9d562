/**
 * A clock that moves only when the test says so: grace periods and TTLs are tested without sleeping.
 */
import type { Clock } from '../../src/rooms/clock.js'

interface Timer { at: number, seq: number, task: () => void }

export class FakeClock implements Clock {
  private timers: Timer[] = []
  private seq = 0

  constructor (private time = Date.parse('2026-11-26T08:00:00.000Z')) {}

  now (): number {
    return this.time
  }

  setTimeout (task: () => void, ms: number): () => void {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, task }
    this.timers.push(timer)
    return () => { this.timers = this.timers.filter((t) => t !== timer) }
  }

  /** Moves time forward, running every timer that falls due, in order. */
  advance (ms: number): void {
    const target = this.time + ms
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.timers = this.timers.filter((t) => t !== due)
      this.time = Math.max(this.time, due.at)
      due.task()
    }
    this.time = target
  }

  get pendingTimers (): number {
    return this.timers.length
  }
}
