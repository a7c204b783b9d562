/**
 * @watch-party/client: the watch-party server's client SDK, typed from @watch-party/protocol.
 *
 * ```ts
 * const client = new WatchPartyClient({ url: 'wss://watch.example.com/ws', token: async () => await fetchToken() })
 * await client.connect()
 * const room = await client.joinRoom(roomId)
 * room.on('chat', (line) => { show(line) })
 * ```
 * See docs/client.md for the whole story.
 * @packageDocumentation
 */
export { WatchPartyClient, type ClientEvents, type ClientOptions, type CloseInfo, type ConnectionState } from './client.js'
export { WatchPartyRoom, type RequestOptions, type RoomEvents, type RoomState } from './room.js'
export { ClientClosedError, ConnectionLostError, RequestError, RequestTimeoutError, WatchPartyError, type ClientErrorCode } from './errors.js'
export { ABNORMAL_CLOSURE, CLOSE_CODES, DEFAULT_BACKOFF, backoffDelay, closePolicy, restartDelay, type BackoffOptions, type ClosePolicy } from './reconnect.js'
export { ClockEstimator, type ClockEstimate, type ClockSample } from './clock.js'
export { tokenExpiresAt } from './token.js'
export { Emitter, type Listener } from './emitter.js'
export { SOCKET_OPEN, type SocketLike, type Timers, type WebSocketClass } from './host.js'
export { REPLY_TYPES, type ChatLine, type PlaybackState, type Reply, type ReplyTypes, type RequestData, type RequestType, type StreamPosition, type ViewerStatusRow } from './types.js'
export { PlayerBinding, bindPlayer, type BindingEvents, type BindingMode, type BindingOptions, type ViewerSample } from './player/binding.js'
export { mediaElementPlayer, type MediaElementLike, type PlayerAdapter, type PlayerEventType } from './player/adapter.js'
export { DEFAULT_TUNING, correctedRate, decide, driftOf, initialFollowState, type Decision, type FollowState, type Observation, type SyncTuning } from './player/controller.js'
