/**
 * The deprecated 1-on-1 sync channels, `sync-<userA>--<userB>`, kept for the frontend's transition.
 * Nothing is stored: state and chat are relayed to the two users' connections only.
 *
 * Contract, by LEGACY_RELAY_MODE:
 * - `open` (default): relayed to every connection of the other user, as the old frontends expect (and chat
 *   also to the sender's other connections).
 * - `strict`: relayed only to the connections that have themselves used that chat id since they connected
 *   (a connection subscribes by sending a valid message on it), so knowing a user's id no longer reaches
 *   their tabs. A connection may use at most MAX_LEGACY_CHANNELS_PER_CONNECTION chat ids.
 * - `off`: `sync`/`chat` with a chatId answer UNKNOWN_EVENT.
 * In every mode a relayed videoUrl must pass the scheme check (VALIDATION_FAILED otherwise), every use is
 * logged with both user ids, and the messages are charged to the sender's per-user budget like any other.
 */
import { randomUUID } from 'node:crypto'
import type { LegacyRelayMode } from '../config.js'
import { AppError } from '../errors.js'
import type { Logger } from '../rooms/room-ports.js'
import { USER_ID_REGEX } from '../rooms/shapes.js'
import { videoUrlProblem } from '../rooms/video-url.js'
import type { BrokerMessage } from './broker.js'
import type { ClientConnection, ClientRequest } from './connection.js'
import type { RequestDataOf, ServerEvent } from './protocol.js'
import { userChannel } from './protocol.js'

export interface ChatPeers {
  self: string
  peer: string
}

/**
 * Checks a legacy chat id and that `senderId` is one of its two users; returns the other one.
 * User ids may themselves contain "--", so every split into two valid ids is tried.
 */
export function validateChatID (chatId: string, senderId: string): ChatPeers {
  const invalid = new AppError('INVALID_CHAT_ID', `${JSON.stringify(chatId).slice(0, 300)} is not sync-<userA>--<userB> with you as one of the two users`)
  if (!chatId.startsWith('sync-')) throw invalid
  const body = chatId.slice('sync-'.length)
  for (let at = body.indexOf('--'); at !== -1; at = body.indexOf('--', at + 1)) {
    const a = body.slice(0, at)
    const b = body.slice(at + 2)
    if (!USER_ID_REGEX.test(a) || !USER_ID_REGEX.test(b) || a === b) continue
    if (a === senderId) return { self: a, peer: b }
    if (b === senderId) return { self: b, peer: a }
  }
  throw invalid
}

export type Publish = (message: BrokerMessage) => void

export interface LegacyRelayOptions {
  mode: LegacyRelayMode
  allowedVideoSchemes: readonly string[]
  logger: Pick<Logger, 'info'>
  /** Adds a local connection to a hub channel (strict mode's per-channel recipients). */
  subscribe: (channel: string, connectionId: string) => void
}

/** Chat ids one connection may use in strict mode (each is a hub subscription held until it closes). */
export const MAX_LEGACY_CHANNELS_PER_CONNECTION = 16

/** The hub channel of one user's connections that have used one legacy chat id (strict mode). */
export const legacyChannel = (chatId: string, userId: string): string => `legacy ${chatId} ${userId}`

/** The chat id of a request on a legacy channel (`sync`/`chat` with `chatId`, as dispatch routes them). */
export function legacyChatId (request: ClientRequest): string | undefined {
  if (request.type !== 'sync' && request.type !== 'chat') return undefined
  if (!('chatId' in request.data)) return undefined
  return typeof request.data.chatId === 'string' ? request.data.chatId : ''
}

const DEFAULT_OPTIONS: LegacyRelayOptions = {
  mode: 'open',
  allowedVideoSchemes: ['http', 'https'],
  logger: { info: () => {} },
  subscribe: () => {}
}

export class LegacyRelay {
  constructor (private readonly publish: Publish, private readonly now: () => number, private readonly options: LegacyRelayOptions = DEFAULT_OPTIONS) {}

  /**
   * Runs before a request is dispatched: refuses legacy channels when they are off, and in strict mode a
   * connection's chat id beyond the cap. Throws AppError; does nothing for other requests.
   */
  admit (connection: ClientConnection, request: ClientRequest): void {
    const chatId = legacyChatId(request)
    if (chatId === undefined) return
    if (this.options.mode === 'off') throw turnedOff()
    if (this.options.mode === 'strict' && !connection.legacyChannels.has(chatId) && connection.legacyChannels.size >= MAX_LEGACY_CHANNELS_PER_CONNECTION) {
      throw new AppError('RATE_LIMITED', `a connection may use at most ${MAX_LEGACY_CHANNELS_PER_CONNECTION} legacy chat ids; use rooms instead`)
    }
  }

  /** Runs after a request was handled successfully: in strict mode the connection now receives that chat id. */
  used (connection: ClientConnection, request: ClientRequest): void {
    const chatId = legacyChatId(request)
    if (chatId === undefined || this.options.mode !== 'strict' || connection.legacyChannels.has(chatId)) return
    const { self } = validateChatID(chatId, connection.userId)
    connection.legacyChannels.add(chatId)
    this.options.subscribe(legacyChannel(chatId, self), connection.id)
  }

  /** Relays the sender's playback state to the other user's connections. */
  sync (senderId: string, data: RequestDataOf<'legacy_sync'>): void {
    if (this.options.mode === 'off') throw turnedOff()
    const { peer } = validateChatID(data.chatId, senderId)
    const problem = videoUrlProblem(data.videoUrl, this.options.allowedVideoSchemes)
    if (problem !== undefined) throw new AppError('VALIDATION_FAILED', problem)
    this.options.logger.info({ userId: senderId, peerId: peer, chatId: data.chatId, type: 'sync' }, 'legacy relay used')
    const event: ServerEvent = {
      type: 'sync',
      channel: data.chatId,
      data: {
        chatId: data.chatId,
        videoUrl: data.videoUrl,
        currentTime: data.currentTime,
        isPlaying: data.isPlaying,
        playbackRate: data.playbackRate ?? 1,
        updatedAt: this.now()
      }
    }
    this.publish({ channel: this.recipients(data.chatId, peer), frame: Buffer.from(JSON.stringify(event)), type: 'sync' })
  }

  /** Relays a chat line to both users' connections but the sender's own, which gets it as its reply. */
  chat (senderId: string, senderConnectionId: string, data: RequestDataOf<'legacy_chat'>): ServerEvent {
    if (this.options.mode === 'off') throw turnedOff()
    const { self, peer } = validateChatID(data.chatId, senderId)
    this.options.logger.info({ userId: senderId, peerId: peer, chatId: data.chatId, type: 'chat' }, 'legacy relay used')
    const event: ServerEvent = {
      type: 'chat',
      channel: data.chatId,
      data: { chatId: data.chatId, id: randomUUID(), userId: senderId, message: data.message, sentAt: new Date(this.now()).toISOString() }
    }
    const frame = Buffer.from(JSON.stringify(event))
    this.publish({ channel: this.recipients(data.chatId, peer), frame, type: 'chat' })
    this.publish({ channel: this.recipients(data.chatId, self), frame, type: 'chat', exceptConnectionId: senderConnectionId })
    return event
  }

  /** The channel that reaches `userId`'s connections for `chatId` in this mode. */
  private recipients (chatId: string, userId: string): string {
    return this.options.mode === 'strict' ? legacyChannel(chatId, userId) : userChannel(userId)
  }
}

function turnedOff (): AppError {
  return new AppError('UNKNOWN_EVENT', 'the legacy 1-on-1 channels (sync/chat with chatId) are turned off on this server (LEGACY_RELAY_MODE=off): use rooms (create_room, join_room, host_sync)')
}
