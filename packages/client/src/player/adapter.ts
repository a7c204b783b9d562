/**
 * What the binding needs of a player, and that interface for an HTMLMediaElement (`<video>`, `<audio>`).
 * Wire another player (a YouTube-style embed) by implementing `PlayerAdapter` over its API.
 *
 * Contract: `subscribe` reports the player's own state changes (whoever caused them) with the names below;
 * positions are seconds; `isBuffering` is true while the player means to play but cannot for want of data.
 */

export type PlayerEventType = 'play' | 'playing' | 'pause' | 'seeking' | 'seeked' | 'ratechange' | 'waiting' | 'loaded' | 'ended'

export interface PlayerAdapter {
  currentTime (): number
  paused (): boolean
  seeking (): boolean
  buffering (): boolean
  playbackRate (): number
  /** The URL it plays, or undefined before one is loaded. */
  source (): string | undefined
  /** Whether it can take a seek (its media's metadata is known). */
  ready (): boolean
  load (url: string): void
  /** May reject (autoplay policy); the binding reports that as `blocked` and tries again on the next sample. */
  play (): Promise<void> | void
  pause (): void
  seek (seconds: number): void
  setPlaybackRate (rate: number): void
  /** False when the player takes only a few fixed rates: drift is then corrected by seeks. */
  readonly fineRate: boolean
  subscribe (listener: (event: PlayerEventType) => void): () => void
}

/** The part of an HTMLMediaElement the adapter uses (the package compiles without the DOM typings). */
export interface MediaElementLike {
  currentTime: number
  playbackRate: number
  readonly paused: boolean
  readonly seeking: boolean
  readonly ended: boolean
  readonly readyState: number
  readonly currentSrc: string
  src: string
  play (): Promise<void> | void
  pause (): void
  addEventListener (type: string, listener: () => void): void
  removeEventListener (type: string, listener: () => void): void
}

const HAVE_METADATA = 1
const HAVE_FUTURE_DATA = 3
const ELEMENT_EVENTS: Record<string, PlayerEventType> = {
  play: 'play',
  playing: 'playing',
  pause: 'pause',
  seeking: 'seeking',
  seeked: 'seeked',
  ratechange: 'ratechange',
  waiting: 'waiting',
  loadedmetadata: 'loaded',
  ended: 'ended'
}

/** A PlayerAdapter over a media element. */
export function mediaElementPlayer (element: MediaElementLike): PlayerAdapter {
  // `waiting` until the next `playing`: Chromium keeps readyState at 3 through some stalls.
  let waiting = false
  const track = (type: string) => () => {
    if (type === 'waiting') waiting = true
    else if (type === 'playing' || type === 'pause' || type === 'loadedmetadata') waiting = false
  }
  const trackers = ['waiting', 'playing', 'pause', 'loadedmetadata'].map((type) => {
    const listener = track(type)
    element.addEventListener(type, listener)
    return { type, listener }
  })
  return {
    currentTime: () => element.currentTime,
    paused: () => element.paused,
    seeking: () => element.seeking,
    buffering: () => !element.paused && !element.ended && !element.seeking && (waiting || element.readyState < HAVE_FUTURE_DATA),
    playbackRate: () => element.playbackRate,
    source: () => element.currentSrc !== '' ? element.currentSrc : element.src !== '' ? element.src : undefined,
    ready: () => element.readyState >= HAVE_METADATA,
    load: (url) => {
      waiting = false
      element.src = url
    },
    play: () => element.play(),
    pause: () => { element.pause() },
    seek: (seconds) => { element.currentTime = seconds },
    setPlaybackRate: (rate) => { element.playbackRate = rate },
    fineRate: true,
    subscribe (listener) {
      const bound = Object.entries(ELEMENT_EVENTS).map(([type, name]) => {
        const handler = (): void => { listener(name) }
        element.addEventListener(type, handler)
        return { type, handler }
      })
      return () => {
        for (const { type, handler } of bound) element.removeEventListener(type, handler)
        for (const { type, listener: l } of trackers) element.removeEventListener(type, l)
      }
    }
  }
}

export function isPlayerAdapter (target: PlayerAdapter | MediaElementLike): target is PlayerAdapter {
  return typeof (target as PlayerAdapter).subscribe === 'function'
}
