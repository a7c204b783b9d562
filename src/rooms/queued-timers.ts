/**
 * Timers whose work runs in a room's queue: a grace expiry, an empty-room close. One helper instead of a copy
 * of "start a timer, then queue the work, and on failure try again" for each.
 *
 * Contract: `start(key, ms, what, work)` runs `work` in `key`'s queue once `ms` have passed. If the work
 * throws, the failure is logged with `what` and the work runs again after `retryMs`, until it succeeds or
 * the returned function cancels it; cancelling stops the pending timer and every retry. Work whose timer has
 * fired is queued at once, so it runs after everything already queued for the key.
 */
import type { Clock } from './clock.js'
import type { KeyedQueue } from './keyed-queue.js'
import type { Logger } from './room-ports.js'

export type Cancel = () => void

export class QueuedTimers {
  constructor (
    private readonly clock: Clock,
    private readonly queue: KeyedQueue,
    private readonly logger: Logger,
    private readonly retryMs = 1000
  ) {}

  start (key: string, ms: number, what: string, work: () => Promise<void> | void): Cancel {
    let cancelled = false
    let cancelTimer: Cancel = () => {}
    const arm = (delay: number): void => {
      cancelTimer = this.clock.setTimeout(() => {
        if (cancelled) return
        void this.queue.run(key, async () => {
          if (cancelled) return
          try {
            await work()
          } catch (err) {
            if (cancelled) return
            this.logger.warn({ err, key, what }, `${what} failed; will retry`)
            arm(this.retryMs)
          }
        })
      }, delay)
    }
    arm(ms)
    return () => {
      cancelled = true
      cancelTimer()
    }
  }
}
