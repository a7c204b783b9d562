/**
 * Viewer reports and drift (protocol 1.1): members tell where their player is; the host's connections get
 * `viewer_status`, each viewer's drift against the host's state extrapolated to the report's `at`.
 *
 * Contract:
 * - A row per member other than the host whose last report arrived within REPORT_TTL_MS; the host's own
 *   reports are ignored, and a row of a user who is host by the time of sending is left out.
 * - `drift` (seconds, positive: the viewer is ahead) is computed when the report arrives, against the
 *   playback state of that moment; null while the room has no playback state.
 * - viewer_status goes out at most once per STATUS_INTERVAL_MS per room, only while the list changes (a
 *   report arrives, or a row expires), and never to anyone but the host's connections.
 */
import type { ViewerStatus } from '@watch-party/protocol'
import type { Clock } from './clock.js'
import { hostPositionAt, type LiveRoom } from './live-room.js'

export const REPORT_TTL_MS = 10_000
export const STATUS_INTERVAL_MS = 1000

export interface PlaybackReport {
  currentTime: number
  isPlaying: boolean
  buffering?: boolean
  at: number
}

interface Row extends ViewerStatus {
  receivedAt: number
}

interface RoomReports {
  rows: Map<string, Row>
  lastSentAt: number
  /** The pending timer: a status due for a change, or the check for the oldest row's expiry. */
  pending: { kind: 'status' | 'expiry', cancel: () => void } | undefined
}

export type SendStatus = (room: LiveRoom, viewers: ViewerStatus[]) => void

export class ViewerReports {
  private readonly rooms = new Map<string, RoomReports>()

  constructor (private readonly clock: Clock, private readonly send: SendStatus, private readonly getRoom: (roomId: string) => LiveRoom | undefined) {}

  report (room: LiveRoom, userId: string, report: PlaybackReport): void {
    if (userId === room.hostId) return
    const drift = room.playback === null ? null : report.currentTime - hostPositionAt(room.playback, report.at)
    let state = this.rooms.get(room.id)
    if (state === undefined) {
      state = { rows: new Map(), lastSentAt: -Infinity, pending: undefined }
      this.rooms.set(room.id, state)
    }
    state.rows.delete(userId) // re-insert: rows stay in order of their last report
    state.rows.set(userId, { userId, drift, buffering: report.buffering === true, at: report.at, receivedAt: this.clock.now() })
    this.changed(room.id, state)
  }

  /** A user left the room: their row goes (the next status says so). */
  forget (roomId: string, userId: string): void {
    const state = this.rooms.get(roomId)
    if (state?.rows.delete(userId) === true) this.changed(roomId, state)
  }

  /** The room is gone: its rows and timer too. */
  drop (roomId: string): void {
    this.rooms.get(roomId)?.pending?.cancel()
    this.rooms.delete(roomId)
  }

  stop (): void {
    for (const roomId of [...this.rooms.keys()]) this.drop(roomId)
  }

  private changed (roomId: string, state: RoomReports): void {
    if (state.pending?.kind === 'status') return // a status is already due; it will carry this change
    state.pending?.cancel()
    const wait = Math.max(0, state.lastSentAt + STATUS_INTERVAL_MS - this.clock.now())
    const cancel = this.clock.setTimeout(() => {
      state.pending = undefined
      this.flush(roomId, state, true)
    }, wait)
    state.pending = { kind: 'status', cancel }
  }

  /** Drops expired rows; sends the status when something changed (`changed`, or a row expired). */
  private flush (roomId: string, state: RoomReports, changed: boolean): void {
    const room = this.getRoom(roomId)
    if (room === undefined) {
      this.drop(roomId)
      return
    }
    const now = this.clock.now()
    for (const [userId, row] of state.rows) {
      if (row.receivedAt + REPORT_TTL_MS <= now || !room.participants.has(userId)) {
        state.rows.delete(userId)
        changed = true
      }
    }
    if (changed) {
      const viewers = [...state.rows.values()]
        .filter((row) => row.userId !== room.hostId)
        .map(({ userId, drift, buffering, at }) => ({ userId, drift, buffering, at }))
      state.lastSentAt = now
      this.send(room, viewers)
    }
    if (state.rows.size === 0) {
      this.rooms.delete(roomId)
      return
    }
    // The next change without a report: the oldest row expiring.
    const oldest = Math.min(...[...state.rows.values()].map((r) => r.receivedAt))
    const cancel = this.clock.setTimeout(() => {
      state.pending = undefined
      this.flush(roomId, state, false)
    }, Math.max(STATUS_INTERVAL_MS, oldest + REPORT_TTL_MS - now))
    state.pending = { kind: 'expiry', cancel }
  }
}
