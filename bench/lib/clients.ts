/**
 * The load generator's view of the three servers: one client interface over two wire protocols.
 *
 * - `ours` and `bare` speak the JSON protocol of shared/protocol.md (`/ws?userId=`, {type, id, data} requests,
 *   replies carrying `replyTo`); the bare baseline implements the subset the bench uses.
 * - `socketio` speaks Engine.IO v4 / Socket.IO v5 over a plain WebSocket (`42["event",data]`, acks `43<id>[...]`),
 *   written by hand so that every server is driven by the same lean client.
 * - `colyseus` speaks Colyseus 0.16 (HTTP matchmaking, then msgpack ROOM_DATA frames): bench/lib/colyseus-client.ts.
 *
 * Timed payloads carry a marker `~<kind><microseconds>~` (kind S = sync, C = chat), stamped with the
 * monotonic clock at send time; receivers find it with a byte search instead of parsing JSON.
 */
import { ColyseusClient } from './colyseus-client.js'
import { LiteSocket } from './ws-lite.js'

export type TargetKind = 'ours' | 'bare' | 'socketio' | 'colyseus'

export const MARK_SYNC = 0x53 // 'S'
export const MARK_CHAT = 0x43 // 'C'
const TILDE = 0x7e

export interface BenchClient {
  readonly userId: string
  /** Sends a request and resolves with the reply's data; rejects on an error reply or timeout. */
  request (type: string, data: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Sends a request without waiting for its reply (the server still acknowledges it). */
  fire (type: string, data: Record<string, unknown>): void
  /** Called for every received frame that carries a timing marker. */
  onMarked: ((kind: number, sentUs: number) => void) | undefined
  /** Called for every received frame without a marker. */
  onOther: (() => void) | undefined
  close (): void
  readonly closed: boolean
}

interface Pending {
  resolve: (data: Record<string, unknown>) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/** The marker's timestamp in a frame, or -1 when it has none. Sets `markKind` (read it with lastMarkKind). */
let markKind = 0
export function lastMarkKind (): number {
  return markKind
}
export function findMark (payload: Buffer): number {
  const i = payload.indexOf(TILDE)
  if (i < 0 || i + 2 >= payload.length) return -1
  markKind = payload[i + 1]!
  let value = 0
  for (let j = i + 2; j < payload.length; j++) {
    const c = payload[j]!
    if (c === TILDE) return value
    if (c < 0x30 || c > 0x39) return -1
    value = value * 10 + (c - 0x30)
  }
  return -1
}

export function marker (kind: 'S' | 'C', us: number): string {
  return `~${kind}${Math.round(us)}~`
}

abstract class BaseClient implements BenchClient {
  onMarked: ((kind: number, sentUs: number) => void) | undefined
  onOther: (() => void) | undefined
  protected readonly pending = new Map<string, Pending>()
  protected nextId = 1

  constructor (readonly userId: string, protected readonly socket: LiteSocket) {}

  /** Starts taking frames; called once the subclass is constructed (frames that came early are replayed). */
  attach (): this {
    const socket = this.socket
    socket.onMessage = (payload) => {
      const sent = findMark(payload)
      if (sent >= 0) {
        this.onMarked?.(markKind, sent)
        return
      }
      this.onOther?.()
      this.frame(payload)
    }
    socket.onClose = () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer)
        p.reject(new Error(`${this.userId}: connection closed`))
      }
      this.pending.clear()
    }
    return this
  }

  get closed (): boolean {
    return this.socket.closed
  }

  close (): void {
    this.socket.close()
  }

  abstract request (type: string, data: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>
  abstract fire (type: string, data: Record<string, unknown>): void
  protected abstract frame (payload: Buffer): void

  protected await (id: string, type: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.userId}: no reply to ${type} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
    })
  }

  protected settle (id: string, error: unknown, data: Record<string, unknown>): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    clearTimeout(p.timer)
    if (error !== undefined && error !== null) p.reject(new Error(`${this.userId}: ${JSON.stringify(error)}`))
    else p.resolve(data)
  }
}

/** Our server and the bare ws baseline: the JSON protocol. */
class JsonClient extends BaseClient {
  private hello: ((data: Record<string, unknown>) => void) | undefined
  readonly connected: Promise<Record<string, unknown>>

  constructor (userId: string, socket: LiteSocket) {
    super(userId, socket)
    this.connected = new Promise((resolve) => { this.hello = resolve })
  }

  async request (type: string, data: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const id = String(this.nextId++)
    const reply = this.await(id, type, timeoutMs)
    this.socket.sendText(JSON.stringify({ type, id, data }))
    return await reply
  }

  fire (type: string, data: Record<string, unknown>): void {
    this.socket.sendText(JSON.stringify({ type, data }))
  }

  protected frame (payload: Buffer): void {
    if (this.pending.size === 0 && this.hello === undefined) return
    const event = JSON.parse(payload.toString('utf8')) as { type: string, replyTo?: string, data: Record<string, unknown> }
    if (event.type === 'connected' && this.hello !== undefined) {
      this.hello(event.data)
      this.hello = undefined
      return
    }
    if (event.replyTo !== undefined) this.settle(event.replyTo, event.type === 'error' ? event.data : undefined, event.data)
  }
}

/** Socket.IO: Engine.IO packets over the WebSocket transport. */
class SocketIoClient extends BaseClient {
  private ready: ((ok: boolean) => void) | undefined
  readonly connected: Promise<boolean>

  constructor (userId: string, socket: LiteSocket) {
    super(userId, socket)
    this.connected = new Promise((resolve) => { this.ready = resolve })
  }

  async request (type: string, data: Record<string, unknown>, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const id = String(this.nextId++)
    const reply = this.await(id, type, timeoutMs)
    this.socket.sendText(`42${id}${JSON.stringify([type, data])}`)
    return await reply
  }

  fire (type: string, data: Record<string, unknown>): void {
    // An ack id so that the server acknowledges like the other two do; the ack is not awaited.
    this.socket.sendText(`42${this.nextId++}${JSON.stringify([type, data])}`)
  }

  protected frame (payload: Buffer): void {
    const engineType = payload[0]
    if (engineType === 0x32) { // '2': ping
      this.socket.sendText('3')
      return
    }
    if (engineType === 0x30) { // '0': open
      this.socket.sendText('40')
      return
    }
    if (engineType !== 0x34) return // only '4' (message) carries Socket.IO packets
    const packetType = payload[1]
    if (packetType === 0x30) { // '0': connected to the namespace
      this.ready?.(true)
      this.ready = undefined
      return
    }
    if (packetType === 0x34) { // '4': connect error
      this.ready?.(false)
      this.ready = undefined
      return
    }
    if (packetType !== 0x33 || this.pending.size === 0) return // '3': ack
    const text = payload.toString('utf8')
    const bracket = text.indexOf('[')
    const id = text.slice(2, bracket)
    const [answer] = JSON.parse(text.slice(bracket)) as [Record<string, unknown> & { error?: unknown }]
    this.settle(id, answer.error, answer)
  }
}

export async function connectClient (kind: TargetKind, port: number, userId: string): Promise<BenchClient> {
  // Colyseus: a connection is a seat in one room, opened by create_room / join_room (bench/lib/colyseus-client.ts).
  if (kind === 'colyseus') return new ColyseusClient(userId, port)
  const user = encodeURIComponent(userId)
  if (kind === 'socketio') {
    const socket = await LiteSocket.connect({ host: '127.0.0.1', port, path: `/socket.io/?EIO=4&transport=websocket&userId=${user}` })
    const client = new SocketIoClient(userId, socket).attach()
    try {
      if (!await withTimeout(client.connected, 30_000, `${userId}: Socket.IO connect`)) throw new Error(`${userId}: Socket.IO refused the connection`)
    } catch (err) {
      client.close()
      throw err
    }
    return client
  }
  const socket = await LiteSocket.connect({ host: '127.0.0.1', port, path: `/ws?userId=${user}` })
  const client = new JsonClient(userId, socket).attach()
  try {
    await withTimeout(client.connected, 30_000, `${userId}: connected event`)
  } catch (err) {
    client.close()
    throw err
  }
  return client
}

async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what} timed out after ${ms} ms`)) }, ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first failure after all settled. */
export async function mapLimit<T, R> (items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failure: unknown
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && failure === undefined) {
      const index = next++
      try {
        results[index] = await fn(items[index]!, index)
      } catch (err) {
        failure ??= err
      }
    }
  })
  await Promise.all(lanes)
  if (failure !== undefined) throw failure
  return results
}
