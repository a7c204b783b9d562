/** A TCP port on 127.0.0.1 that was free a moment ago (for processes that must listen on a known port). */
import { once } from 'node:events'
import net from 'node:net'

export async function freePort (): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  return port
}
