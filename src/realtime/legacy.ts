/**
 * The deprecated 1-on-1 sync channels, `sync-<userA>--<userB>`, kept for the frontend's transition.
 * Nothing is stored: state and chat are relayed to the two users' connections only.
 */
import { randomUUID } from 'node:crypto'
import { AppError } from '../errors.js'
import { USER_ID_REGEX } from '../rooms/shapes.js'
import type { BrokerMessage } from './broker.js'
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

export class LegacyRelay {
  constructor (private readonly publish: Publish, private readonly now: () => number) {}

  /** Relays the sender's playback state to the other user's connections. */
  sync (senderId: string, data: RequestDataOf<'legacy_sync'>): void {
    const { peer } = validateChatID(data.chatId, senderId)
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
    this.publish({ channel: userChannel(peer), frame: Buffer.from(JSON.stringify(event)), type: 'sync' })
  }

  /** Relays a chat line to both users' connections but the sender's own, which gets it as its reply. */
  chat (senderId: string, senderConnectionId: string, data: RequestDataOf<'legacy_chat'>): ServerEvent {
    const { self, peer } = validateChatID(data.chatId, senderId)
    const event: ServerEvent = {
      type: 'chat',
      channel: data.chatId,
      data: { chatId: data.chatId, id: randomUUID(), userId: senderId, message: data.message, sentAt: new Date(this.now()).toISOString() }
    }
    const frame = Buffer.from(JSON.stringify(event))
    this.publish({ channel: userChannel(peer), frame, type: 'chat' })
    this.publish({ channel: userChannel(self), frame, type: 'chat', exceptConnectionId: senderConnectionId })
    return event
  }
}
