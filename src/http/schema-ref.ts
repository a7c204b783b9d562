import { Type, type TUnsafe } from 'typebox'
import type { ErrorResponse, Room, SyncData } from '../rooms/shapes.js'

/**
 * A reference to a shape registered with addSchema, typed as the shape itself: validation and
 * serialization resolve it by $id, and the OpenAPI document shows it as a named component.
 */
function ref<T> (id: string): TUnsafe<T> {
  return Type.Unsafe<T>(Type.Ref(id))
}

export const RoomRef = ref<Room>('Room')
export const SyncDataRef = ref<SyncData>('SyncData')
export const ErrorRef = ref<ErrorResponse>('ErrorResponse')
