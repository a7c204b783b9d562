/**
 * A TCP proxy between the server and Postgres that a test can break, to simulate database outages portably
 * (no iptables, no stopping the shared Postgres).
 *
 * - `cut()`: every open connection is destroyed and new ones are accepted and dropped at once, as when the
 *   database restarts or a load balancer resets connections: clients fail fast.
 * - `stall()`: nothing is forwarded any more in either direction (held, not lost) and new connections are
 *   accepted but never answered, as in a network partition: clients fail only through their own timeouts.
 * - `restore()`: forwarding resumes (held bytes are delivered) and new connections are served again.
 * Closed in teardown.
 */
import { EventEmitter, once } from 'node:events'
import net from 'node:net'

interface Teardown { teardown (fn: () => Promise<void> | void): void }

interface Pipe {
  client: net.Socket
  upstream: net.Socket
  /** Bytes held while stalled, per direction, in order. */
  toUpstream: Buffer[]
  toClient: Buffer[]
}

type Mode = 'open' | 'cut' | 'stalled'

export class TcpProxy extends EventEmitter {
  private readonly pipes = new Set<Pipe>()
  private mode: Mode = 'open'
  /** Bytes the server sent towards the database while stalled. */
  heldFromClient = 0
  /** Connections accepted since the proxy started (including dropped ones). */
  accepted = 0

  private constructor (private readonly server: net.Server, readonly port: number, private readonly target: { host: string, port: number }) {
    super()
    server.on('connection', (socket) => { this.accept(socket) })
  }

  static async start (t: Teardown, target: { host: string, port: number }): Promise<TcpProxy> {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address() as net.AddressInfo
    const proxy = new TcpProxy(server, address.port, target)
    t.teardown(async () => { await proxy.close() })
    return proxy
  }

  /** `url` with its host and port replaced by the proxy's. */
  static through (url: string, proxy: TcpProxy): string {
    const parsed = new URL(url)
    parsed.hostname = '127.0.0.1'
    parsed.port = String(proxy.port)
    return parsed.toString()
  }

  get connections (): number {
    return this.pipes.size
  }

  cut (): void {
    this.mode = 'cut'
    for (const pipe of this.pipes) this.destroy(pipe)
  }

  stall (): void {
    this.mode = 'stalled'
  }

  restore (): void {
    this.mode = 'open'
    for (const pipe of this.pipes) {
      for (const chunk of pipe.toUpstream.splice(0)) pipe.upstream.write(chunk)
      for (const chunk of pipe.toClient.splice(0)) pipe.client.write(chunk)
    }
    this.heldFromClient = 0
  }

  /** Resolves once the server has sent at least `bytes` towards the database since the stall began. */
  async untilHeld (bytes: number, timeoutMs = 5000): Promise<void> {
    if (this.heldFromClient >= bytes) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('held', onHeld)
        reject(new Error(`the proxy held ${this.heldFromClient} bytes after ${timeoutMs} ms; expected ${bytes}`))
      }, timeoutMs)
      const onHeld = (): void => {
        if (this.heldFromClient < bytes) return
        clearTimeout(timer)
        this.off('held', onHeld)
        resolve()
      }
      this.on('held', onHeld)
    })
  }

  async close (): Promise<void> {
    this.mode = 'cut'
    for (const pipe of this.pipes) this.destroy(pipe)
    if (!this.server.listening) return
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }

  private accept (client: net.Socket): void {
    this.accepted++
    if (this.mode === 'cut') {
      client.destroy()
      return
    }
    const upstream = net.connect(this.target.port, this.target.host)
    const pipe: Pipe = { client, upstream, toUpstream: [], toClient: [] }
    this.pipes.add(pipe)
    client.on('data', (chunk) => {
      if (this.mode === 'stalled') {
        pipe.toUpstream.push(chunk)
        this.heldFromClient += chunk.length
        this.emit('held')
      } else {
        upstream.write(chunk)
      }
    })
    upstream.on('data', (chunk) => {
      if (this.mode === 'stalled') pipe.toClient.push(chunk)
      else client.write(chunk)
    })
    const end = (): void => { this.destroy(pipe) }
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
  }

  private destroy (pipe: Pipe): void {
    this.pipes.delete(pipe)
    pipe.client.destroy()
    pipe.upstream.destroy()
  }
}
