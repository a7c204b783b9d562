/**
 * A room event as the broker carries it: its channel, its frame serialized once (the same bytes go to every
 * member), and a stream event's position.
 */
import { roomChannel, type ServerEvent } from '@watch-party/protocol'
import type { BrokerMessage } from './broker.js'

export function roomMessage (roomId: string, event: ServerEvent, exceptConnectionId?: string): BrokerMessage {
  const channel = roomChannel(roomId)
  const positioned = event.seq !== undefined && event.epoch !== undefined
  const frame = Buffer.from(JSON.stringify(positioned
    ? { type: event.type, channel, seq: event.seq, epoch: event.epoch, data: event.data }
    : { type: event.type, channel, data: event.data }))
  return { channel, frame, type: event.type, exceptConnectionId, ...(positioned ? { position: { epoch: event.epoch!, seq: event.seq! } } : {}) }
}
