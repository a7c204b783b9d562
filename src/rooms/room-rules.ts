/**
 * Pure rules shared by the owner side and the REST reads: how a room id is spelled, who may do what.
 * No state, no I/O.
 */
import { AppError } from '../errors.js'
import type { LiveRoom } from './live-room.js'
import type { Actor, Permission } from './room-ports.js'
import { UUID_REGEX } from './shapes.js'

/**
 * The one spelling of a room id used as a key everywhere (memory, queues, channels): lower case. A UUID in
 * upper case names the same room; keyed as given it would shadow the live room with a fresh copy.
 */
export function canonicalRoomId (roomId: string): string {
  if (!UUID_REGEX.test(roomId)) throw invalidRoomId(roomId)
  return roomId.toLowerCase()
}

export function invalidRoomId (roomId: string): AppError {
  return new AppError('INVALID_ROOM_ID', `${JSON.stringify(roomId).slice(0, 80)} is not a room id (UUID)`)
}

export function roomNotFound (roomId: string): AppError {
  return new AppError('ROOM_NOT_FOUND', `room ${roomId} does not exist`)
}

/** Why `actor` may not do what `permission` requires in `room`, or undefined when it may. */
export function checkPermission (room: LiveRoom, actor: Actor, permission: Permission): AppError | undefined {
  if (permission === 'anyone') return undefined
  if (!room.hasConnection(actor.userId, actor.connectionId)) {
    return new AppError('NOT_IN_ROOM', `join room ${room.id} first`)
  }
  if (permission === 'host' && room.hostId !== actor.userId) {
    return new AppError('NOT_HOST', `only the host of room ${room.id} may do this`)
  }
  return undefined
}
