/**
 * A media element that plays on a fake clock: its position advances at its playback rate while it plays and is
 * neither seeking nor stalled; a seek takes `seekMs`, play() starts after `startMs`. Events fire as a browser's
 * would (play, playing, pause, seeking, seeked, ratechange, waiting, loadedmetadata), on the fake clock's timers.
 */
import type { MediaElementLike } from '@watch-party/client'
import type { FakeClock } from '../../helpers/fake-clock.js'

export class FakeMedia implements MediaElementLike {
  private base = 0
  private baseAt: number
  private rate = 1
  private playing = false
  private isSeeking = false
  private stalled = false
  private url = ''
  private readonly listeners = new Map<string, Set<() => void>>()
  paused = true
  readonly ended = false
  readyState = 0
  seeks = 0
  rateWrites = 0

  constructor (private readonly clock: FakeClock, private readonly latency = { seekMs: 80, startMs: 40, loadMs: 50 }) {
    this.baseAt = clock.now()
  }

  get currentTime (): number {
    if (!this.moving()) return this.base
    return this.base + (this.clock.now() - this.baseAt) / 1000 * this.rate
  }

  set currentTime (seconds: number) {
    this.freeze()
    this.base = seconds
    this.seeks++
    this.isSeeking = true
    this.fire('seeking')
    this.clock.setTimeout(() => {
      this.freeze()
      this.isSeeking = false
      this.fire('seeked')
      if (!this.paused) this.fire('playing')
    }, this.latency.seekMs)
  }

  get playbackRate (): number { return this.rate }
  set playbackRate (rate: number) {
    this.freeze()
    this.rate = rate
    this.rateWrites++
    this.fire('ratechange')
  }

  get seeking (): boolean { return this.isSeeking }
  get currentSrc (): string { return this.url }
  get src (): string { return this.url }
  set src (url: string) {
    this.url = url
    this.base = 0
    this.readyState = 0
    this.clock.setTimeout(() => {
      this.readyState = 4
      this.fire('loadedmetadata')
    }, this.latency.loadMs)
  }

  play (): Promise<void> {
    if (!this.paused) return Promise.resolve()
    this.freeze()
    this.paused = false
    this.fire('play')
    this.clock.setTimeout(() => {
      if (this.paused) return
      this.freeze()
      this.playing = true
      this.fire('playing')
    }, this.latency.startMs)
    return Promise.resolve()
  }

  pause (): void {
    if (this.paused) return
    this.freeze()
    this.paused = true
    this.playing = false
    this.fire('pause')
  }

  /** The network stops delivering: the position stops, readyState drops, `waiting` fires. */
  stall (): void {
    this.freeze()
    this.stalled = true
    this.readyState = 2
    this.fire('waiting')
  }

  resume (): void {
    this.freeze()
    this.stalled = false
    this.readyState = 4
    if (!this.paused) this.fire('playing')
  }

  addEventListener (type: string, listener: () => void): void {
    let set = this.listeners.get(type)
    if (set === undefined) this.listeners.set(type, set = new Set())
    set.add(listener)
  }

  removeEventListener (type: string, listener: () => void): void {
    this.listeners.get(type)?.delete(listener)
  }

  listenerCount (): number {
    return [...this.listeners.values()].reduce((n, s) => n + s.size, 0)
  }

  private moving (): boolean {
    return this.playing && !this.paused && !this.isSeeking && !this.stalled
  }

  private freeze (): void {
    this.base = this.currentTime
    this.baseAt = this.clock.now()
  }

  private fire (type: string): void {
    for (const listener of [...this.listeners.get(type) ?? []]) listener()
  }
}
