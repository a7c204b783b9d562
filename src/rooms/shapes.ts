/**
 * The shapes of the contract that REST and the WebSocket both carry, from the one protocol source
 * (packages/protocol). Room rules and routes import them from here.
 */
export {
  CurrentTime, ErrorResponseSchema, PlaybackRate, RoomId, RoomName, RoomSchema, SHARED_SCHEMAS, SyncDataSchema,
  USER_ID_PATTERN, USER_ID_REGEX, UUID_REGEX, UserId, VideoUrl,
  type ErrorResponse, type Role, type Room, type SyncData
} from '@watch-party/protocol'
