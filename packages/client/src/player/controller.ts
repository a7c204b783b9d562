/**
 * The viewer's follow rule, as a pure function: from the drift to the host and the player's state to what the
 * player should do. No timers, no clock, no element: the binding samples, calls `decide`, applies the answer.
 *
 * Contracts:
 * - Small drift is corrected by the playback rate alone: `rate = hostRate × (1 − gain × drift)`, the correction
 *   bounded by `maxRateAdjust`, with `drift` smoothed over the last samples (`smoothing`) against the players'
 *   jitter. It is proportional all the way down to zero (no dead band), so a steady drift cannot build up
 *   unnoticed: any drift gets a correction that shrinks it.
 * - Drift above `seekThreshold` is corrected by one seek, aimed `seekLead` ahead of the host to make up for the
 *   time the seek itself takes. After each seek, once the position moves again (two steady samples, the rate
 *   left at the host's meanwhile), the landing tells how far off the aim was and the lead is adjusted by it; a
 *   landing more than `refineThreshold` off gets one more seek at once with the corrected lead. Otherwise no
 *   second seek within `seekCooldownMs`.
 * - While the player is seeking or buffering nothing is decided (`hold`): its position is not moving, and
 *   acting on it would fight the player.
 * - A paused host: the viewer pauses, and seeks only when further than `pausedTolerance` from the host's frame.
 *   A paused viewer of a playing host starts from a seek aimed ahead by the lead (starting takes time too).
 */

export interface SyncTuning {
  /** Drift (s) above which the viewer seeks rather than changing its rate. */
  seekThreshold: number
  /** Rate correction per second of drift (1/s): the loop's time constant is 1/gain seconds. */
  gain: number
  /** Largest rate correction, as a fraction of the host's rate (0.1: between 0.9× and 1.1× the host's rate). */
  maxRateAdjust: number
  /** A paused viewer further than this (s) from the paused host seeks to the host's frame. */
  pausedTolerance: number
  /** No new seek within this long after the last one (ms): the player must settle first. */
  seekCooldownMs: number
  /** A seek that landed further than this (s) from the host is followed by one more, with the lead it taught. */
  refineThreshold: number
  /** The first lead (s) a seek aims ahead of the host, before any seek has been measured. */
  initialSeekLead: number
  /** The largest lead (s) a seek may aim ahead. */
  maxSeekLead: number
  /** False for players that cannot play at arbitrary rates (some embeds): drift is then corrected by seeks alone. */
  rateCorrection: boolean
  /**
   * Weight of each new sample in the drift the rate follows (an exponential average, 0-1]: players report their
   * position with some jitter, and a rate that follows every wobble wobbles itself. 1: no smoothing.
   */
  smoothing: number
}

export const DEFAULT_TUNING: Readonly<SyncTuning> = Object.freeze({
  seekThreshold: 0.4,
  gain: 1.2,
  maxRateAdjust: 0.1,
  pausedTolerance: 0.02,
  seekCooldownMs: 1000,
  refineThreshold: 0.1,
  initialSeekLead: 0.1,
  maxSeekLead: 1,
  rateCorrection: true,
  smoothing: 0.8
})

/** One sample: the player and the host's state, taken at the same instant. */
export interface Observation {
  /** Local monotonic time, ms (for the cooldown). */
  now: number
  /** The host's position at this instant (s), from the room's playback state and the server clock. */
  expected: number
  hostPlaying: boolean
  hostRate: number
  /** When the host's state was true (its `updatedAt`): a new one restarts the measurement of a seek's landing. */
  hostUpdatedAt?: number
  /** The player's position (s). */
  position: number
  paused: boolean
  seeking: boolean
  buffering: boolean
}

/** What the follower remembers between samples. */
export interface FollowState {
  /** How far ahead (s) the next seek aims. */
  seekLead: number
  /** `now` of the last seek decided, or undefined. */
  lastSeekAt: number | undefined
  /** A seek was made and its landing not yet measured. */
  measuringSeek: boolean
  /** While measuring: the first steady sample after the seek (the position must move before it counts). */
  landing: { position: number, now: number, hostUpdatedAt: number | undefined } | undefined
  /** The smoothed drift (s) while following at rate, or undefined after anything else. */
  smoothed: number | undefined
}

export const initialFollowState = (tuning: Pick<SyncTuning, 'initialSeekLead'> = DEFAULT_TUNING): FollowState =>
  ({ seekLead: tuning.initialSeekLead, lastSeekAt: undefined, measuringSeek: false, landing: undefined, smoothed: undefined })

export type Decision =
  /** Leave the player alone (it is seeking or buffering; `clock`: the binding waits for a clock estimate). */
  | { kind: 'hold', reason: 'seeking' | 'buffering' | 'clock', drift: number }
  /** Jump to `to` (s), then be playing or paused as `play` says, at `rate`. */
  | { kind: 'seek', to: number, play: boolean, rate: number, drift: number }
  /** Be playing or paused as `play` says, at `rate`. */
  | { kind: 'follow', play: boolean, rate: number, drift: number }

/** Drift in seconds: positive when the viewer is ahead of the host. */
export const driftOf = (o: Pick<Observation, 'position' | 'expected'>): number => o.position - o.expected

/** The rate that corrects `drift` (s) while the host plays at `hostRate`: proportional and bounded. */
export function correctedRate (drift: number, hostRate: number, tuning: Pick<SyncTuning, 'gain' | 'maxRateAdjust' | 'rateCorrection'>): number {
  if (!tuning.rateCorrection) return hostRate
  const correction = Math.max(-tuning.maxRateAdjust, Math.min(tuning.maxRateAdjust, -tuning.gain * drift))
  return hostRate * (1 + correction)
}

export function decide (o: Observation, state: FollowState, tuning: SyncTuning = DEFAULT_TUNING): { decision: Decision, state: FollowState } {
  const drift = driftOf(o)
  if (o.seeking) return { decision: { kind: 'hold', reason: 'seeking', drift }, state: { ...state, smoothed: undefined } }
  const coolingDown = state.lastSeekAt !== undefined && o.now - state.lastSeekAt < tuning.seekCooldownMs

  if (!o.hostPlaying) {
    if (Math.abs(drift) > tuning.pausedTolerance && !coolingDown) {
      return { decision: { kind: 'seek', to: Math.max(0, o.expected), play: false, rate: o.hostRate, drift }, state: { ...state, lastSeekAt: o.now, measuringSeek: false, smoothed: undefined } }
    }
    return { decision: { kind: 'follow', play: false, rate: o.hostRate, drift }, state: { ...state, smoothed: undefined } }
  }

  // Buffering while it should play: its position is stuck; the seek (if still needed) comes once it moves again.
  if (o.buffering && !o.paused) return { decision: { kind: 'hold', reason: 'buffering', drift }, state: { ...state, smoothed: undefined } }

  // Starting while the host plays: starting takes the player some tens of ms, so it starts from a seek aimed
  // ahead by the lead (learned like any seek's), rather than starting behind and catching up by rate.
  if (o.paused) {
    if (coolingDown) return { decision: { kind: 'follow', play: true, rate: o.hostRate, drift }, state: { ...state, smoothed: undefined } }
    const to = Math.max(0, o.expected + state.seekLead * o.hostRate)
    return { decision: { kind: 'seek', to, play: true, rate: o.hostRate, drift }, state: { ...state, lastSeekAt: o.now, measuringSeek: true, landing: undefined, smoothed: undefined } }
  }

  let next = state
  let refine = false
  if (state.measuringSeek) {
    // Where the seek landed shows once the position moves: until then the rate stays the host's, so the landing
    // is the seek's own error and not the correction's.
    const landing = state.landing
    const moved = landing !== undefined && landing.hostUpdatedAt === o.hostUpdatedAt && o.now > landing.now &&
      o.position - landing.position > 0.5 * (o.now - landing.now) / 1000 * o.hostRate
    if (!moved) {
      return { decision: { kind: 'follow', play: true, rate: o.hostRate, drift }, state: { ...state, landing: { position: o.position, now: o.now, hostUpdatedAt: o.hostUpdatedAt }, smoothed: undefined } }
    }
    next = { ...state, measuringSeek: false, landing: undefined }
    if (Math.abs(drift) < tuning.seekThreshold) {
      next.seekLead = Math.max(0, Math.min(tuning.maxSeekLead, state.seekLead - drift))
      refine = Math.abs(drift) > tuning.refineThreshold
    }
  }

  if (refine || (Math.abs(drift) > (tuning.rateCorrection ? tuning.seekThreshold : Math.min(tuning.seekThreshold, 0.1)) && !coolingDown)) {
    const to = Math.max(0, o.expected + next.seekLead * o.hostRate)
    // A refining seek is not measured again: one correction per host seek at most.
    return { decision: { kind: 'seek', to, play: true, rate: o.hostRate, drift }, state: { ...next, lastSeekAt: o.now, measuringSeek: !refine, landing: undefined, smoothed: undefined } }
  }
  const smoothed = next.smoothed === undefined ? drift : next.smoothed + tuning.smoothing * (drift - next.smoothed)
  return { decision: { kind: 'follow', play: true, rate: correctedRate(smoothed, o.hostRate, tuning), drift }, state: { ...next, smoothed } }
}
