/**
 * A TCP proxy on loopback that holds every chunk for `delayMs` (each direction) before passing it on: the pages
 * load the demo and open their WebSocket through it, so every host_sync, sync, ping and pong travels `delayMs`
 * each way, as over a slow network. Order within a connection is kept. A new upstream connection is made for
 * each client connection, so it follows the server through a restart on the same port.
 */
import net from 'node:net'

export class DelayProxy {
  private constructor (private readonly server: net.Server, readonly port: number, private readonly sockets: Set<net.Socket>) {}

  static async start (target: { port: number, host?: string }, delayMs: number): Promise<DelayProxy> {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host ?? '127.0.0.1')
      for (const s of [client, upstream]) {
        s.setNoDelay(true)
        sockets.add(s)
        s.once('close', () => { sockets.delete(s) })
      }
      const pipe = (from: net.Socket, to: net.Socket): void => {
        from.on('data', (chunk) => { setTimeout(() => { if (!to.destroyed) to.write(chunk) }, delayMs) })
        from.once('end', () => { setTimeout(() => { to.end() }, delayMs) })
        from.once('error', () => { to.destroy() })
        from.once('close', () => { setTimeout(() => { to.destroy() }, delayMs) })
      }
      pipe(client, upstream)
      pipe(upstream, client)
    })
    server.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    return new DelayProxy(server, (server.address() as net.AddressInfo).port, sockets)
  }

  get baseUrl (): string {
    return `http://127.0.0.1:${this.port}`
  }

  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }
}
