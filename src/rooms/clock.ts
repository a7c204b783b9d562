/**
 * Time as the room rules see it. Production uses the system clock; tests pass a fake one so grace periods
 * and TTLs are checked without sleeping.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now (): number
  /** Epoch milliseconds with sub-millisecond precision (pong.serverTime); clocks without it use now(). */
  preciseNow?: () => number
  /** Runs `task` once after `ms`; the returned function cancels it (a no-op once it ran). */
  setTimeout (task: () => void, ms: number): () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  preciseNow,
  setTimeout (task, ms) {
    const timer = setTimeout(task, ms)
    timer.unref()
    return () => { clearTimeout(timer) }
  }
}

/**
 * The wall clock with sub-millisecond precision: the monotonic clock offset to the wall clock, re-anchored
 * whenever the two drift more than a millisecond apart (NTP slews the wall clock; the monotonic one does not
 * follow), so it agrees with Date.now() within a millisecond and the stamps it is compared with.
 */
let wallMinusMonotonic = Date.now() - performance.now()
function preciseNow (): number {
  const precise = wallMinusMonotonic + performance.now()
  const wall = Date.now()
  if (Math.abs(precise - wall) <= 1) return precise
  wallMinusMonotonic = wall - performance.now()
  return wall
}
