/**
 * A real `ws` client for protocol tests: connects, records every event, and lets a test await the reply to
 * a request or the next event matching a predicate, without sleeping.
 *
 * Every frame it receives is checked against the protocol package's event schemas and position rule
 * (serverEventProblem): a frame that breaks the contract fails the test file at once, whatever the test.
 */
import { serverEventProblem } from '@watch-party/protocol'
import WebSocket from 'ws'

export interface ReceivedEvent {
  type: string
  replyTo?: string
  channel?: string
  /** Stream events of a room: their position (protocol 1.1). */
  seq?: number
  epoch?: string
  // Tests read nested fields of arbitrary events; the protocol's schemas, not this type, are what is checked.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: Record<string, any>
}

export interface CloseInfo {
  code: number
  reason: string
}

interface Waiter {
  match: (event: ReceivedEvent) => boolean
  resolve: (event: ReceivedEvent) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/** What helpers need of a tap test: somewhere to register cleanup. */
export interface Teardown {
  teardown (fn: () => void | Promise<void>): void
}

let nextId = 0

export class TestClient {
  /** Every event received, in order. */
  readonly events: ReceivedEvent[] = []
  /** Index into events below which `next` no longer looks. */
  private cursor = 0
  private readonly waiters = new Set<Waiter>()
  readonly closed: Promise<CloseInfo>
  connected!: ReceivedEvent

  private constructor (readonly socket: WebSocket, readonly name: string) {
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        for (const w of this.waiters) {
          clearTimeout(w.timer)
          w.reject(new Error(`${name}: socket closed (${code} ${reason.toString()}) while waiting`))
        }
        this.waiters.clear()
        resolve({ code, reason: reason.toString() })
      })
    })
    socket.on('message', (raw) => {
      const event = JSON.parse(raw.toString()) as ReceivedEvent
      const problem = serverEventProblem(event)
      if (problem !== undefined) throw new Error(`${name} received a frame that breaks the protocol: ${problem}: ${raw.toString().slice(0, 500)}`)
      this.events.push(event)
      for (const w of [...this.waiters]) {
        if (w.match(event)) {
          this.waiters.delete(w)
          clearTimeout(w.timer)
          w.resolve(event)
        }
      }
    })
    socket.on('error', () => {})
  }

  /** Connects as `userId` (development mode) or with `token`, and waits for the `connected` hello. */
  static async connect (wsUrl: string, who: { userId?: string, token?: string, headers?: Record<string, string> }, t?: Teardown): Promise<TestClient> {
    const url = new URL(wsUrl)
    if (who.userId !== undefined) url.searchParams.set('userId', who.userId)
    if (who.token !== undefined) url.searchParams.set('token', who.token)
    const socket = new WebSocket(url, { headers: who.headers })
    const client = new TestClient(socket, who.userId ?? 'token-user')
    t?.teardown(() => { client.terminate() })
    const hello = client.waitFor((e) => e.type === 'connected')
    hello.catch(() => {}) // awaited below once the socket is open; a refused upgrade rejects there instead
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => { resolve() })
      socket.once('error', reject)
      socket.once('unexpected-response', (_req, res) => { reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)) })
    })
    client.connected = await hello
    return client
  }

  /** Opens a socket without waiting for the hello (for tests of refused connections). */
  static open (wsUrl: string, who: { userId?: string, token?: string, headers?: Record<string, string> } = {}): TestClient {
    const url = new URL(wsUrl)
    if (who.userId !== undefined) url.searchParams.set('userId', who.userId)
    if (who.token !== undefined) url.searchParams.set('token', who.token)
    return new TestClient(new WebSocket(url, { headers: who.headers }), who.userId ?? 'anonymous')
  }

  send (type: string, data: unknown, id?: string): void {
    this.socket.send(JSON.stringify(id === undefined ? { type, data } : { type, id, data }))
  }

  sendRaw (frame: string | Buffer, options?: { binary?: boolean }): void {
    this.socket.send(frame, options ?? {})
  }

  /** Sends a request with a fresh id and resolves with its one reply (success event or error). */
  async request (type: string, data: unknown, timeoutMs = 5000): Promise<ReceivedEvent> {
    const id = `r${++nextId}`
    const reply = this.waitFor((e) => e.replyTo === id, timeoutMs)
    this.send(type, data, id)
    return await reply
  }

  /** Like request, but fails unless the reply is `expectedType`. */
  async expect (type: string, data: unknown, expectedType: string): Promise<ReceivedEvent> {
    const reply = await this.request(type, data)
    if (reply.type !== expectedType) throw new Error(`${this.name}: ${type} answered ${JSON.stringify(reply)}; expected ${expectedType}`)
    return reply
  }

  /** The next event after the cursor that matches; moves the cursor past it. */
  async next (match: (event: ReceivedEvent) => boolean, timeoutMs = 5000): Promise<ReceivedEvent> {
    for (let i = this.cursor; i < this.events.length; i++) {
      const event = this.events[i]!
      if (match(event)) {
        this.cursor = i + 1
        return event
      }
    }
    const event = await this.waitFor(match, timeoutMs)
    this.cursor = this.events.indexOf(event) + 1
    return event
  }

  async nextOfType (type: string, timeoutMs = 5000): Promise<ReceivedEvent> {
    return await this.next((e) => e.type === type, timeoutMs)
  }

  /**
   * Resolves after a ping round trip: every frame the server wrote to this socket before answering is here.
   */
  async barrier (): Promise<void> {
    await this.request('ping', {})
  }

  /** Events received so far of a type (optionally after index `from`). */
  received (type: string): ReceivedEvent[] {
    return this.events.filter((e) => e.type === type)
  }

  close (code?: number): void {
    this.socket.close(code)
  }

  terminate (): void {
    this.socket.terminate()
  }

  private async waitFor (match: (event: ReceivedEvent) => boolean, timeoutMs = 5000): Promise<ReceivedEvent> {
    return await new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter)
          reject(new Error(`${this.name}: no matching event within ${timeoutMs} ms; got ${JSON.stringify(this.events.slice(-5))}`))
        }, timeoutMs)
      }
      this.waiters.add(waiter)
    })
  }
}

export interface Party {
  roomId: string
  host: TestClient
  viewers: TestClient[]
}

/** A room created over the WebSocket by `host`, with each of `viewers` connected and joined, in order. */
export async function startParty (wsUrl: string, t: Teardown, host: string, ...viewers: string[]): Promise<Party> {
  const hostClient = await TestClient.connect(wsUrl, { userId: host }, t)
  const created = await hostClient.expect('create_room', { roomName: `${host}'s party` }, 'room_created')
  const roomId = created.data.room.id as string
  const viewerClients: TestClient[] = []
  for (const viewer of viewers) {
    const client = await TestClient.connect(wsUrl, { userId: viewer }, t)
    await client.expect('join_room', { roomId }, 'room_joined')
    viewerClients.push(client)
  }
  return { roomId, host: hostClient, viewers: viewerClients }
}

/**
 * A value as canonical JSON (object keys sorted, recursively): events compared "by value", since an event
 * replayed from the stored history may list its data's keys in another order than when it was first sent.
 */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v)
}
