/**
 * Binds a room to a player: the host's player drives the room, every viewer's player follows the host.
 *
 * Contracts:
 * - Mode follows the room: the host's binding is in `host` mode, everyone else's in `viewer` mode, and a
 *   host_changed switches it (unless `mode` pins it).
 * - Host: sends host_sync, stamped with `at` (the server clock when the position was read), when playback
 *   starts (once the position moves after `playing`), pauses, finishes a seek (likewise), changes rate, stalls (`waiting`, sent as not playing) or loads
 *   a video, every `hostHeartbeatMs` while playing, after every rejoin, and whenever its own position strays
 *   more than `hostResyncThreshold` from what it last sent, extrapolated (a player starts moving some
 *   milliseconds after it says `playing`, and its clock need not run at the wall clock's pace).
 * - Viewer: every `tickMs` (and at once on every change of the room's playback) compares its position with the
 *   host's, extrapolated on the server clock, and applies `decide` (controller.ts); sends playback_report every
 *   `reportMs` while the room has a playback state. Follows on its own through a lost connection (the last
 *   state and the clock estimate stay), and picks up the new state after the rejoin.
 * - `status` is emitted after every viewer sample; `viewers` whenever the server sends viewer_status (host).
 */
import type { WatchPartyClient } from '../client.js'
import type { WatchPartyRoom } from '../room.js'
import { Emitter } from '../emitter.js'
import { localNow, realTimers, type Timers } from '../host.js'
import type { ViewerStatusRow } from '../types.js'
import { isPlayerAdapter, mediaElementPlayer, type MediaElementLike, type PlayerAdapter, type PlayerEventType } from './adapter.js'
import { DEFAULT_TUNING, decide, initialFollowState, type Decision, type FollowState, type SyncTuning } from './controller.js'

export type BindingMode = 'host' | 'viewer'

export interface BindingOptions {
  /** Pin the mode; default: `host` while this user is the room's host, else `viewer`. */
  mode?: BindingMode
  tuning?: Partial<SyncTuning>
  /** Viewer: ms between samples (default 250). */
  tickMs?: number
  /** Viewer: ms between playback_reports (default 1000). */
  reportMs?: number
  /** Host: ms between host_syncs while playing (default 5000). */
  hostHeartbeatMs?: number
  /** Host: resync when the player is this far (s) from the room's extrapolated state (default 0.015). */
  hostResyncThreshold?: number
  /**
   * The room's client. With it, at the start (when no round of pings has completed yet) and after every
   * (re)connect the binding waits for the client's first clock estimate
   * from pings before it trusts the server clock: until then the host sends no sync and checks nothing, and a
   * viewer corrects by rate only (no seek). The offset the client uses meanwhile comes from one sample, the
   * server's hello, which is off by however long either side was busy (seconds, right after a restart).
   */
  client?: Pick<WatchPartyClient, 'on' | 'clock'>
  /** Local monotonic clock, ms (default performance.now-based). */
  now?: () => number
  timers?: Timers
}

export interface ViewerSample {
  /** s, positive when this viewer is ahead of the host; undefined before the host has synced. */
  drift: number | undefined
  decision: Decision | undefined
  rate: number
  buffering: boolean
  seeking: boolean
  /** Seeks this binding has made to follow the host. */
  seeks: number
}

export interface BindingEvents {
  mode: BindingMode
  /** Viewer: after every sample. */
  status: ViewerSample
  /** Host: the server's view of each viewer (viewer_status). */
  viewers: readonly ViewerStatusRow[]
  /** A host_sync or playback_report failed (the connection is down, a refusal); the binding keeps going. */
  error: Error
  /** The player refused to play (autoplay policy): the app should ask the user to press play. */
  blocked: Error
}

type RoomLike = Pick<WatchPartyRoom, 'id' | 'playback' | 'isHost' | 'joined' | 'expectedPosition' | 'sync' | 'report' | 'on'>

export class PlayerBinding extends Emitter<BindingEvents> {
  readonly player: PlayerAdapter
  private currentMode: BindingMode
  private tuning: SyncTuning
  private follow: FollowState
  private readonly now: () => number
  private readonly timers: Timers
  private readonly offs: Array<() => void> = []
  private cancelTick: (() => void) | undefined
  private cancelReport: (() => void) | undefined
  private cancelHeartbeat: (() => void) | undefined
  private lastPlayback: WatchPartyRoom['playback'] = null
  private seekCount = 0
  private destroyed = false
  private lastSample: ViewerSample | undefined
  private syncing = false
  /** False from a (re)connect until the client's next clock estimate (only with `options.client`). */
  private clockSettled = true
  private syncWhenSettled = false
  /** The shortest round trip of any clock estimate seen: what the path allows when nothing is queued. */
  private bestRtt = Infinity
  private cancelMoving: (() => void) | undefined

  constructor (private readonly room: RoomLike, target: PlayerAdapter | MediaElementLike, private readonly options: BindingOptions = {}) {
    super()
    this.player = isPlayerAdapter(target) ? target : mediaElementPlayer(target)
    this.tuning = { ...DEFAULT_TUNING, ...(this.player.fineRate ? {} : { rateCorrection: false }), ...options.tuning }
    this.follow = initialFollowState(this.tuning)
    this.now = options.now ?? localNow
    this.timers = options.timers ?? realTimers
    this.currentMode = this.wantedMode()
    this.offs.push(this.player.subscribe((event) => { this.onPlayer(event) }))
    this.offs.push(room.on('change', () => { this.onRoomChange() }))
    this.offs.push(room.on('viewer_status', ({ viewers }) => { this.emit('viewers', viewers) }))
    this.offs.push(room.on('recovered', () => { this.afterRejoin() }))
    this.offs.push(room.on('reset', () => { this.afterRejoin() }))
    this.offs.push(room.on('closed', () => { this.destroy() }))
    const client = options.client
    if (client !== undefined) {
      this.clockSettled = client.clock !== undefined
      this.offs.push(client.on('connected', () => { this.clockSettled = false }))
      this.offs.push(client.on('clock', (estimate) => {
        this.bestRtt = Math.min(this.bestRtt, estimate.rtt)
        this.settled()
      }))
    }
    this.enter(this.currentMode)
  }

  get mode (): BindingMode { return this.currentMode }
  /** The last viewer sample (undefined in host mode until one was taken). */
  get status (): ViewerSample | undefined { return this.lastSample }
  get seeks (): number { return this.seekCount }

  /** Changes the thresholds while bound. */
  tune (tuning: Partial<SyncTuning>): void {
    this.tuning = { ...this.tuning, ...tuning }
  }

  /** Host: plays `url` in the room (loads it here; viewers follow once it is synced). */
  load (url: string): void {
    this.player.load(url)
    if (this.currentMode === 'host') this.sendSync(url, 0, false)
  }

  /** Stops following and driving; the player is left as it is. */
  destroy (): void {
    if (this.destroyed) return
    this.destroyed = true
    this.stopTimers()
    for (const off of this.offs.splice(0)) off()
  }

  private wantedMode (): BindingMode {
    return this.options.mode ?? (this.room.isHost ? 'host' : 'viewer')
  }

  private enter (mode: BindingMode): void {
    this.stopTimers()
    this.currentMode = mode
    this.lastPlayback = this.room.playback
    if (mode === 'viewer') {
      this.follow = initialFollowState(this.tuning)
      this.scheduleTick(0)
      this.scheduleReport()
      return
    }
    // A new host starts from where the room is, at the room's rate (a viewer's correction is not the host's).
    const playback = this.room.playback
    if (playback !== null) {
      if (this.player.playbackRate() !== playback.playbackRate) this.player.setPlaybackRate(playback.playbackRate)
      if (this.player.source() === undefined) {
        this.player.load(playback.videoUrl)
      }
    }
    this.scheduleHeartbeat()
    this.scheduleTick(this.options.tickMs ?? 250)
  }

  private onRoomChange (): void {
    if (this.destroyed) return
    const mode = this.wantedMode()
    if (mode !== this.currentMode) {
      this.enter(mode)
      this.emit('mode', mode)
      if (mode === 'host') this.syncNow()
      return
    }
    if (mode === 'viewer' && this.room.playback !== this.lastPlayback) {
      this.lastPlayback = this.room.playback
      this.scheduleTick(0)
    }
  }

  private afterRejoin (): void {
    if (this.destroyed) return
    if (this.currentMode === 'host') {
      if (!this.clockSettled) this.syncWhenSettled = true
      else if (!this.roomAgrees()) this.syncNow()
      else this.checkHost()
    } else {
      this.scheduleTick(0)
    }
  }

  private settled (): void {
    if (this.destroyed || this.clockSettled) return
    this.clockSettled = true
    if (this.currentMode === 'host' && this.syncWhenSettled) {
      if (!this.roomAgrees()) this.syncNow()
      else this.checkHost()
    }
    else if (this.currentMode === 'viewer') this.scheduleTick(0)
    this.syncWhenSettled = false
  }

  private onPlayer (event: PlayerEventType): void {
    if (this.destroyed || this.currentMode !== 'host') return
    switch (event) {
      case 'playing':
      case 'seeked':
        if (!this.player.paused()) {
          this.syncWhenMoving()
          return
        }
        this.syncNow()
        return
      case 'pause':
      case 'ratechange':
      case 'waiting':
      case 'ended':
        this.syncNow()
        return
      case 'loaded': {
        const source = this.player.source()
        if (source !== undefined && source !== this.room.playback?.videoUrl) this.syncNow()
        return
      }
      default:
    }
  }

  /**
   * Host, after `playing` or a seek while playing: sync once the position moves. Players fire those events some
   * tens of ms before their clock runs; a position read before that would put every viewer behind by as much.
   */
  private syncWhenMoving (): void {
    this.cancelMoving?.()
    const since = this.now()
    let last = { position: this.player.currentTime(), at: since }
    let steps = 0
    const check = (): void => {
      this.cancelMoving = undefined
      const player = this.player
      if (this.destroyed || this.currentMode !== 'host' || player.paused() || player.seeking()) return
      const now = this.now()
      const position = player.currentTime()
      // Moving: two intervals in a row at half the rate or more (a landing can nudge the position once).
      steps = position - last.position >= 0.5 * (now - last.at) / 1000 * player.playbackRate() && position > last.position ? steps + 1 : 0
      last = { position, at: now }
      if (steps >= 2 || now - since > 1000) this.syncNow()
      else this.cancelMoving = this.timers.setTimeout(check, 10)
    }
    this.cancelMoving = this.timers.setTimeout(check, 10)
  }

  /** Host: the player's state now, stamped now. */
  private syncNow (): void {
    const url = this.player.source()
    if (url === undefined || this.player.seeking()) return
    if (!this.clockSettled) {
      this.syncWhenSettled = true
      return
    }
    const playing = !this.player.paused() && !this.player.buffering()
    this.sendSync(url, this.player.currentTime(), playing)
  }

  private sendSync (videoUrl: string, currentTime: number, isPlaying: boolean): void {
    if (!this.room.joined) return
    this.syncing = true
    this.room.sync({ videoUrl, currentTime: Math.max(0, currentTime), isPlaying, playbackRate: this.player.playbackRate() }).catch((err: unknown) => {
      this.emit('error', err instanceof Error ? err : new Error(String(err)))
    }).finally(() => { this.syncing = false })
    this.scheduleHeartbeat()
  }

  private scheduleHeartbeat (): void {
    this.cancelHeartbeat?.()
    this.cancelHeartbeat = this.timers.setTimeout(() => {
      this.cancelHeartbeat = undefined
      if (this.destroyed || this.currentMode !== 'host') return
      if (!this.player.paused() && !this.player.buffering()) this.syncNow()
      else this.scheduleHeartbeat()
    }, this.options.hostHeartbeatMs ?? 5000)
  }

  private scheduleTick (ms: number): void {
    this.cancelTick?.()
    this.cancelTick = this.timers.setTimeout(() => {
      this.cancelTick = undefined
      if (this.destroyed) return
      if (this.currentMode === 'viewer') this.tick()
      else this.checkHost()
      this.scheduleTick(this.options.tickMs ?? 250)
    }, ms)
  }

  /** Host: does the room's state (after a rejoin) say what this player does, but for the position? */
  private roomAgrees (): boolean {
    const playback = this.room.playback
    const player = this.player
    return playback !== null && playback.videoUrl === player.source() && playback.playbackRate === player.playbackRate() &&
      playback.isPlaying === (!player.paused() && !player.buffering())
  }

  /**
   * Host: is the room still told where this player is? Within the clock estimate's extra uncertainty (half of
   * its round trip beyond the shortest one seen) a difference may be the clock's, not the player's: resyncing on
   * it would move every viewer by the estimate's error (right after a server restart the first pings can take
   * hundreds of ms more than usual).
   */
  private checkHost (): void {
    const player = this.player
    const playback = this.room.playback
    if (this.syncing || !this.clockSettled || playback === null || player.seeking() || player.buffering() || player.paused()) return
    const expected = this.room.expectedPosition()
    if (expected === undefined || !playback.isPlaying) return
    const rtt = this.options.client?.clock?.rtt
    const uncertainty = rtt === undefined || !Number.isFinite(this.bestRtt) ? 0 : Math.max(0, rtt - this.bestRtt) / 2000
    if (Math.abs(player.currentTime() - expected) > Math.max(this.options.hostResyncThreshold ?? 0.015, uncertainty)) this.syncNow()
  }

  /** Viewer: one sample and its decision. */
  private tick (): void {
    const playback = this.room.playback
    const player = this.player
    if (playback === null) {
      this.publish(undefined, undefined)
      return
    }
    if (player.source() !== playback.videoUrl) {
      player.load(playback.videoUrl)
      this.follow = initialFollowState(this.tuning)
    }
    if (!player.ready()) {
      this.publish(undefined, undefined)
      return
    }
    // Read the player and the host's position at the same instant.
    const position = player.currentTime()
    const expected = this.room.expectedPosition() ?? 0
    const { decision, state } = decide({
      now: this.now(),
      expected,
      hostPlaying: playback.isPlaying,
      hostRate: playback.playbackRate,
      hostUpdatedAt: playback.updatedAt,
      position,
      paused: player.paused(),
      seeking: player.seeking(),
      buffering: player.buffering()
    }, this.follow, this.tuning)
    if (decision.kind === 'seek' && !this.clockSettled && !player.paused()) {
      // Not on a clock from one sample: keep playing as it is until the estimate is in (a player not yet playing
      // has nothing to lose: it starts from the rough position, and the estimate refines it).
      this.publish(decision.drift, { kind: 'hold', reason: 'clock', drift: decision.drift })
      return
    }
    this.follow = state
    this.apply(decision)
    this.publish(decision.drift, decision)
  }

  private apply (decision: Decision): void {
    if (decision.kind === 'hold') return
    const player = this.player
    if (decision.kind === 'seek') {
      this.seekCount++
      player.seek(decision.to)
    }
    // Rate steps under 0.0005 are not applied: the drift they leave is under 0.0005 / gain s, and rate writes are not free.
    if (Math.abs(player.playbackRate() - decision.rate) >= 0.0005) {
      player.setPlaybackRate(decision.rate)
    }
    if (decision.play && player.paused()) {
      try {
        const started = player.play()
        if (started !== undefined) started.catch((err: unknown) => { this.emit('blocked', err instanceof Error ? err : new Error(String(err))) })
      } catch (err) {
        this.emit('blocked', err instanceof Error ? err : new Error(String(err)))
      }
    } else if (!decision.play && !player.paused()) {
      player.pause()
    }
  }

  private publish (drift: number | undefined, decision: Decision | undefined): void {
    this.lastSample = { drift, decision, rate: this.player.playbackRate(), buffering: this.player.buffering(), seeking: this.player.seeking(), seeks: this.seekCount }
    this.emit('status', this.lastSample)
  }

  private scheduleReport (): void {
    this.cancelReport?.()
    this.cancelReport = this.timers.setTimeout(() => {
      this.cancelReport = undefined
      if (this.destroyed || this.currentMode !== 'viewer') return
      this.report()
      this.scheduleReport()
    }, this.options.reportMs ?? 1000)
  }

  private report (): void {
    if (this.room.playback === null || !this.room.joined || !this.player.ready()) return
    const player = this.player
    this.room.report({ currentTime: Math.max(0, player.currentTime()), isPlaying: !player.paused(), buffering: player.buffering() || player.seeking() })
      .catch((err: unknown) => { this.emit('error', err instanceof Error ? err : new Error(String(err))) })
  }

  private stopTimers (): void {
    this.cancelTick?.()
    this.cancelReport?.()
    this.cancelHeartbeat?.()
    this.cancelMoving?.()
    this.cancelTick = this.cancelReport = this.cancelHeartbeat = this.cancelMoving = undefined
  }
}

/** Binds `room` to a media element or a player adapter; see PlayerBinding. */
export function bindPlayer (room: RoomLike, target: PlayerAdapter | MediaElementLike, options?: BindingOptions): PlayerBinding {
  return new PlayerBinding(room, target, options)
}
