/**
 * TCP connections per client address, counted from the moment the server accepts them until they close:
 * HTTP requests in progress, idle keep-alives, upgrades whose headers are still arriving or whose credentials
 * are still being checked, and open WebSockets. This is what bounds the file descriptors one address can hold.
 *
 * Contract:
 * - `accept` runs for every TCP connection of the server, before any byte is read. A connection that would
 *   make its address hold more than `hardCap` is destroyed at once, unread: nothing can be said to it (it has
 *   not even sent a request), and reading it would spend the descriptor the cap protects.
 * - `count(address)` includes the connection asking, so an upgrade may go on while `count <= softCap`.
 *   Beyond that the upgrade is accepted and closed with 1013, which a browser can read and retry after.
 *   The hard cap is twice the soft one: honest clients over the soft cap hear why; only a client that keeps
 *   twice that many connections open without finishing them meets the unread drop.
 * - `acceptedAt(socket)` is when the connection was accepted (performance.now() ms), for the handshake deadline.
 */
import type { Socket } from 'node:net'

export class AddressConnections {
  private readonly counts = new Map<string, number>()
  private readonly accepted = new WeakMap<Socket, number>()
  /**
   * One 'close' listener for every socket (called with the socket as `this`), instead of a closure per socket:
   * the address is read back from the socket, which caches its peer address from the `accept` that counted it.
   */
  private readonly onClose: (this: Socket) => void

  constructor (readonly softCap: number, readonly hardCap = softCap * 2) {
    const counts = this.counts
    this.onClose = function (this: Socket) {
      const address = addressOf(this)
      const left = (counts.get(address) ?? 1) - 1
      if (left <= 0) counts.delete(address)
      else counts.set(address, left)
    }
  }

  /** Counts a newly accepted TCP connection; destroys it when its address already holds `hardCap`. */
  accept (socket: Socket): void {
    const address = addressOf(socket)
    const held = this.counts.get(address) ?? 0
    if (held >= this.hardCap) {
      socket.destroy()
      return
    }
    this.counts.set(address, held + 1)
    this.accepted.set(socket, performance.now())
    socket.on('close', this.onClose)
  }

  /** Connections `address` holds now (0 for an address never seen, e.g. app.inject). */
  count (address: string): number {
    return this.counts.get(address) ?? 0
  }

  acceptedAt (socket: Socket): number | undefined {
    return this.accepted.get(socket)
  }

  /** Addresses with at least one connection (tests: closed connections must be forgotten). */
  get addresses (): number {
    return this.counts.size
  }
}

/** The client address the per-address limits count: the peer address, an IPv6 one as its /64 network. */
export function addressOf (socket: Socket): string {
  return limitedAddress(socket.remoteAddress ?? 'unknown')
}

/**
 * An IPv6 address as its /64 network (`2001:db8:1:2::/64`): one subscriber, household or device is given a
 * whole /64, so counting single IPv6 addresses would give one client 2^64 budgets. IPv4 addresses (also in
 * their IPv6-mapped form, which is how a dual-stack server sees them) are counted one by one.
 */
export function limitedAddress (ip: string): string {
  const address = ip.split('%')[0]!
  if (!address.includes(':') || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address)) return address
  const [head = '', tail] = address.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return address
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}
