/**
 * What a WebSocket upgrade must pass before the socket exists, after the origin check: the per-address cap on
 * connections, the per-address rate of attempts (both before any credential is read, so that unauthenticated
 * floods cost no token verification), and authentication within the handshake deadline.
 *
 * Contract: `check` resolves with the caller's identity, or with the AppError to close the socket with once it
 * is upgraded (RATE_LIMITED and SERVICE_UNAVAILABLE become 1013, anything else 4401), or with 'dropped' when
 * the deadline passed: the TCP connection has then been destroyed and nothing more is done with it. It never
 * rejects. The deadline counts from the TCP accept, so slow headers and slow authentication share it.
 */
import type { FastifyRequest } from 'fastify'
import { AppError } from '../errors.js'
import type { IdentityResolver } from '../http/identity.js'
import type { Clock } from '../rooms/clock.js'
import { addressOf, type AddressConnections } from './address-limits.js'
import type { UpgradeVerdict } from './connection-lifecycle.js'
import { addressKey, type UserBudgets } from './user-budgets.js'

export interface UpgradeGateOptions {
  identity: IdentityResolver
  budgets: UserBudgets
  addresses: AddressConnections
  clock: Clock
  handshakeTimeoutMs: number
  connectsPerAddressPerMinute: number
}

export class UpgradeGate {
  constructor (private readonly options: UpgradeGateOptions) {}

  async check (request: FastifyRequest): Promise<UpgradeVerdict | 'dropped'> {
    const { identity, budgets, addresses, clock } = this.options
    const socket = request.raw.socket
    const address = addressOf(socket)
    if (addresses.count(address) > addresses.softCap) {
      return { error: new AppError('RATE_LIMITED', `too many connections from this address (at most ${addresses.softCap}); retry later`) }
    }
    if (!budgets.connect(addressKey(address), clock.now())) {
      return { error: new AppError('RATE_LIMITED', `too many connection attempts from this address (at most ${this.options.connectsPerAddressPerMinute} a minute); retry later`) }
    }
    const deadline = (addresses.acceptedAt(socket) ?? performance.now()) + this.options.handshakeTimeoutMs
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'dropped'>((resolve) => {
      timer = setTimeout(() => { resolve('dropped') }, Math.max(0, deadline - performance.now()))
    })
    const resolved = identity.resolve({ headers: request.headers, query: request.query as Record<string, unknown> })
      .then((who): UpgradeVerdict => ({ identity: who }))
      .catch((err: unknown): UpgradeVerdict => ({ error: err instanceof AppError ? err : new AppError('UNAUTHORIZED', 'could not verify the credentials') }))
    const verdict = await Promise.race([resolved, timedOut])
    clearTimeout(timer)
    if (verdict === 'dropped') socket.destroy()
    return verdict
  }
}
