/**
 * Time as the room rules see it. Production uses the system clock; tests pass a fake one so grace periods
 * and TTLs are checked without sleeping.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now (): number
  /** Runs `task` once after `ms`; the returned function cancels it (a no-op once it ran). */
  setTimeout (task: () => void, ms: number): () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout (task, ms) {
    const timer = setTimeout(task, ms)
    timer.unref()
    return () => { clearTimeout(timer) }
  }
}
