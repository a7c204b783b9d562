/**
 * Two clients in one room on a server process, recording what their rooms emit: the set-up the restart and
 * crash tests share.
 */
import WebSocket from 'ws'
import { WatchPartyClient, type ClientOptions, type WatchPartyRoom } from '@watch-party/client'

interface Teardown { teardown (fn: () => void | Promise<void>): void }

export interface Member {
  client: WatchPartyClient
  room: WatchPartyRoom
  /** What the room emitted, as short strings: `chat:<message>`, `joined:<user>`, `left:<user>`, `recovered:<n>`, `reset:<reason>`. */
  log: string[]
  /** Close codes the client reconnected after. */
  closes: number[]
}

export function member (t: Teardown, url: string, userId: string, options: Partial<ClientOptions> = {}): WatchPartyClient {
  const client = new WatchPartyClient({ url, userId, WebSocket, requestTimeoutMs: 60_000, ...options })
  t.teardown(() => { client.close() })
  return client
}

export function watch (client: WatchPartyClient, room: WatchPartyRoom): Member {
  const log: string[] = []
  const closes: number[] = []
  client.on('reconnecting', ({ close }) => { closes.push(close.code) })
  room.on('chat', (line) => { log.push(`chat:${line.message}`) })
  room.on('participant_joined', ({ userId }) => { log.push(`joined:${userId}`) })
  room.on('participant_left', ({ userId }) => { log.push(`left:${userId}`) })
  room.on('recovered', ({ events }) => { log.push(`recovered:${events.length}`) })
  room.on('reset', ({ reason }) => { log.push(`reset:${reason}`) })
  return { client, room, log, closes }
}

/** Resolves when the room has rejoined after a reconnect (recovered or reset). */
export async function rejoined (room: WatchPartyRoom): Promise<'recovered' | 'reset'> {
  return await new Promise((resolve) => {
    const offRecovered = room.once('recovered', () => { offReset(); resolve('recovered') })
    const offReset = room.once('reset', () => { offRecovered(); resolve('reset') })
  })
}
