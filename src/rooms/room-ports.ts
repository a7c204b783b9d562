/**
 * What the room logic needs of the world around it, and what it offers: the actor, the permission levels, the
 * sink its events go to and the responder a request is answered through. The room logic never imports the
 * transport, the broker or the database; the realtime layer and the repository implement these.
 */
import type { ServerEvent } from '@watch-party/protocol'

/** Who asks: one connection of one user. */
export interface Actor {
  connectionId: string
  userId: string
}

/** What a request needs of its sender. 'member' and 'host' mean this connection has joined the room. */
export type Permission = 'anyone' | 'member' | 'host'

export interface Logger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

/** An event before it is addressed: the realtime layer adds `channel` (from the room) and `replyTo`. */
export type RoomEvent = ServerEvent

/** Where a room's events go: the realtime layer implements it (hub + broker). */
export interface RoomEventSink {
  /** Delivers `event` to every connection subscribed to the room but `exceptConnectionId`, in call order. */
  publish (roomId: string, event: ServerEvent, exceptConnectionId?: string): void
  /** Delivers `event` to one connection (viewer_status to the host's connections). */
  sendTo (connectionId: string, event: ServerEvent): void
  /** Subscribes a connection to the room's events after `position`, the position of the snapshot it was given. */
  subscribe (roomId: string, connectionId: string, position: { epoch: string, seq: number }): void
  unsubscribe (roomId: string, connectionId: string): void
  /** Unsubscribes every connection of a room that is gone. */
  dropRoom (roomId: string): void
}

export const NO_SINK: RoomEventSink = { publish () {}, sendTo () {}, subscribe () {}, unsubscribe () {}, dropRoom () {} }

/**
 * How a request is answered. `reply` sends its one reply (with replyTo); `send` sends further frames to the
 * same connection after it (a catch-up's replayed events), before any later event of the room.
 */
export interface Responder {
  reply (event: ServerEvent): void
  send (event: ServerEvent): void
}

export interface RoomLimits {
  disconnectGraceMs: number
  emptyRoomTtlMs: number
  maxRoomParticipants: number
  maxRoomsPerHost: number
  playbackFlushMs: number
  maxRoomsPerConnection: number
  roomHistorySize: number
  chatHistorySize: number
  replayMaxBytes: number
  storeWaitMs: number
  allowedVideoSchemes: readonly string[]
}

/**
 * Which rooms this process may serve. One process serves them all; in cluster mode, those whose lease it holds
 * (src/cluster). The room host asks before it loads a room, and says when a write was fenced out.
 */
export interface Ownership {
  /** Whether this process may serve the room now. */
  owns (roomId: string): boolean
  /** A room this process just created: take it before anything else is written to it. */
  claimCreated (roomId: string): Promise<void>
  /** A write of the room's was fenced out: another process serves it now. */
  fencedOut (roomId: string): void
  /** Whether to read every open room back at start (one process) or load rooms on first use (cluster). */
  readonly loadAllAtStart: boolean
}

export const SOLE_OWNER: Ownership = { owns: () => true, claimCreated: async () => {}, fencedOut: () => {}, loadAllAtStart: true }
