/**
 * One WebSocket's life on this server, from the finished upgrade to its close: the refusals decided at the
 * upgrade, the ClientConnection above the socket, the heartbeat, the token's expiry, and what a close
 * releases. ws-route.ts wires the pieces; this file is the only one that holds `ws` sockets after the upgrade.
 *
 * Contracts:
 * - Every socket gets an 'error' listener before anything else can fail (an unhandled one crashes the process).
 * - A refused socket is accepted and then closed, so that browsers can read the close code.
 * - A connection's close releases everything it holds (hub subscriptions, timers) synchronously; the room
 *   service hears of the disconnect only after the requests already received have been handled.
 * - A refused socket gets 1013 (try again later: clients retry after a delay) when it hit a cap or a rate
 *   (connections or connection attempts of the user or the address, an identity provider that could not be
 *   reached), and 4401 when its credentials are bad. 4429 ("do not reconnect until fixed") is only for
 *   sustained message flooding.
 * - Heartbeat: every `heartbeatMs` each socket is pinged with the tick's random payload; only a pong echoing
 *   the latest payload counts, so a client that sends pongs without reading the pings is terminated.
 * - The socket is closed with 4401 once its token has expired plus `tokenLeewayMs` (the same clock-skew
 *   leeway that let the token in at the upgrade), unless it was refreshed before.
 */
import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { AppError } from '../errors.js'
import type { Identity } from '../http/identity.js'
import type { Metrics } from '../metrics.js'
import type { Clock } from '../rooms/clock.js'
import type { RoomOps } from './handlers.js'
import { ClientConnection, type ConnectionHooks, type ConnectionLimits } from './connection.js'
import type { Hub } from './hub.js'
import { CLOSE_CODES, userChannel, type ServerEvent } from './protocol.js'
import { userKey, type UserBudgets } from './user-budgets.js'
import { WsTransport } from './ws-transport.js'

/** What the upgrade's checks decided about the caller, before the socket exists. */
export type UpgradeVerdict = { identity: Identity } | { error: AppError }

export interface LifecycleLimits {
  maxConnectionsPerUser: number
  wsConnectsPerUserPerMinute: number
  slowConsumerBytes: number
}

export interface LifecycleOptions {
  hub: Hub
  rooms: Pick<RoomOps, 'disconnect'>
  metrics: Metrics
  clock: Clock
  logger: FastifyBaseLogger
  hooks: ConnectionHooks
  heartbeatMs: number
  limits: LifecycleLimits
  /** The per-user message and connection budgets (shared by all of a user's connections). */
  budgets: UserBudgets
  /** How long after its `exp` a token is still accepted (clock skew); the socket closes only then. */
  tokenLeewayMs: number
  /** The first event a new connection gets (`connected`). */
  hello: (connection: ClientConnection) => ServerEvent
}

/** The most a timer can wait in Node (about 24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * A connection with its socket under heartbeat: `awaiting` is the payload of the ping it has not answered yet.
 * The heartbeat walks the hub's connections; nothing else keeps a table of sockets.
 */
class LiveConnection extends ClientConnection {
  awaiting: Buffer | undefined

  constructor (userId: string, readonly socket: WebSocket, readonly remoteAddress: string, transport: WsTransport, hooks: ConnectionHooks, limits: ConnectionLimits) {
    super(userId, transport, hooks, limits)
  }
}

/**
 * Each socket's connection, for the socket listeners below: they are shared by every socket (ws calls them
 * with the socket as `this`) instead of being closures made per socket.
 */
const connectionOf = new WeakMap<WebSocket, LiveConnection>()
/** The caller's address of a socket refused at the upgrade (it is closing), for the 'error' listener's log. */
const refusedAddress = new WeakMap<WebSocket, string>()

function onMessage (this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
  connectionOf.get(this)?.receive(toBuffer(data), isBinary)
}

function onPong (this: WebSocket, data: Buffer): void {
  const connection = connectionOf.get(this)
  if (connection?.awaiting?.equals(data) === true) connection.awaiting = undefined
}

export class ConnectionLifecycle {
  /** The 'error' listener of every accepted socket (the address it logs is its connection's). */
  private readonly onError: (this: WebSocket, err: Error) => void
  private readonly expiryTimers = new Map<string, () => void>()
  private heartbeat: NodeJS.Timeout | undefined
  /** One budget charger for every connection (told which connection it charges). */
  private readonly limits: ConnectionLimits
  private readonly onClose: (this: WebSocket) => void

  constructor (private readonly options: LifecycleOptions) {
    const { budgets, clock } = options
    this.limits = { admit: (connection) => budgets.message(userKey(connection.userId), clock.now()) }
    const release = (connection: LiveConnection): void => { this.release(connection) }
    const logger = options.logger
    this.onError = function (this: WebSocket, err: Error) {
      logger.debug({ err, remoteAddress: connectionOf.get(this)?.remoteAddress ?? refusedAddress.get(this) }, 'socket error')
    }
    this.onClose = function (this: WebSocket) {
      const connection = connectionOf.get(this)
      if (connection !== undefined) release(connection)
    }
  }

  /** Starts the heartbeat: one timer for all sockets; a socket that did not answer the previous ping is terminated. */
  start (): void {
    if (this.heartbeat !== undefined) return
    this.heartbeat = setInterval(() => {
      // One unpredictable payload per tick, shared by every socket: a pong can only echo it after reading it.
      const payload = randomBytes(8)
      for (const connection of this.options.hub.all()) {
        if (!(connection instanceof LiveConnection)) continue
        if (connection.awaiting !== undefined) {
          connection.socket.terminate()
          continue
        }
        connection.awaiting = payload
        connection.socket.ping(payload)
      }
      // Keys of users who went quiet would otherwise be held until their next charge.
      this.options.budgets.sweep?.(this.options.clock.now())
    }, this.options.heartbeatMs)
    this.heartbeat.unref()
  }

  /** Stops the heartbeat and closes every connection with 1012 (the app is closing). */
  closeAll (): void {
    clearInterval(this.heartbeat)
    for (const connection of this.options.hub.all()) {
      (connection as ClientConnection).close(CLOSE_CODES.SERVICE_RESTART, 'server restarting; reconnect and rejoin')
    }
  }

  /** (Re)arms the 4401 close at the token's expiry plus the leeway; undefined means the credential never expires. */
  scheduleExpiry (connection: ClientConnection, tokenExpiresAt: number | undefined): void {
    const { clock } = this.options
    this.expiryTimers.get(connection.id)?.()
    this.expiryTimers.delete(connection.id)
    if (tokenExpiresAt === undefined) return
    const expiresAt = tokenExpiresAt + this.options.tokenLeewayMs
    const wait = Math.min(Math.max(0, expiresAt - clock.now()), MAX_TIMER_MS)
    this.expiryTimers.set(connection.id, clock.setTimeout(() => {
      if (clock.now() < expiresAt) {
        this.scheduleExpiry(connection, tokenExpiresAt)
        return
      }
      connection.close(CLOSE_CODES.UNAUTHORIZED, 'token expired; reconnect with a fresh token')
    }, wait))
  }

  /** Takes over a socket whose upgrade just completed. Never throws. */
  accept (socket: WebSocket, request: FastifyRequest, verdict: UpgradeVerdict | null): void {
    const { hub, metrics, clock, logger, limits, budgets } = this.options
    releaseUpgradeRequest(socket, request)
    // Before anything can fail: a ws socket that emits 'error' with no listener would crash the process.
    socket.on('error', this.onError)
    if (verdict === null || 'error' in verdict) {
      refusedAddress.set(socket, request.ip)
      // A cap or rate that was hit, or a token that could not be checked (identity provider unreachable), is
      // not a bad token: the client should retry after a delay.
      const retry = verdict?.error.code === 'SERVICE_UNAVAILABLE' || verdict?.error.code === 'RATE_LIMITED'
      if (verdict?.error.code === 'RATE_LIMITED') metrics.errors.inc({ code: 'RATE_LIMITED', transport: 'ws' })
      socket.close(retry ? CLOSE_CODES.TRY_AGAIN_LATER : CLOSE_CODES.UNAUTHORIZED, (verdict?.error.message ?? 'unauthorized').slice(0, 120))
      return
    }
    const userId = verdict.identity.userId
    const refusal = !budgets.connect(userKey(userId), clock.now())
      ? `too many connection attempts for this user (at most ${limits.wsConnectsPerUserPerMinute} a minute); retry later`
      : hub.subscriberCount(userChannel(userId)) >= limits.maxConnectionsPerUser
        ? `too many connections for this user (at most ${limits.maxConnectionsPerUser}); retry later`
        : undefined
    if (refusal !== undefined) {
      metrics.errors.inc({ code: 'RATE_LIMITED', transport: 'ws' })
      refusedAddress.set(socket, request.ip)
      socket.close(CLOSE_CODES.TRY_AGAIN_LATER, refusal)
      return
    }
    const transport = new WsTransport(socket, limits.slowConsumerBytes, (unsentBytes) => {
      metrics.slowConsumers.inc()
      logger.warn({ userId, unsentBytes }, 'slow consumer terminated')
    })
    const connection = new LiveConnection(userId, socket, request.ip, transport, this.options.hooks, this.limits)
    connectionOf.set(socket, connection)
    hub.add(connection)
    hub.subscribe(userChannel(connection.userId), connection.id)
    metrics.wsConnections.inc()
    this.scheduleExpiry(connection, verdict.identity.expiresAt)

    socket.on('message', onMessage)
    socket.on('pong', onPong)
    socket.on('close', this.onClose)
    connection.send(this.options.hello(connection))
  }

  private release (connection: ClientConnection): void {
    connection.closed = true
    this.expiryTimers.get(connection.id)?.()
    this.expiryTimers.delete(connection.id)
    this.options.hub.remove(connection.id)
    this.options.metrics.wsConnections.dec()
    // After the requests already received have been handled: a join still writing to the database when
    // the socket dropped must count as joined, so that the reconnect grace covers it too.
    void connection.settled().then(() => { this.options.rooms.disconnect({ connectionId: connection.id, userId: connection.userId }) })
  }
}

/**
 * Lets go of what @fastify/websocket keeps per socket after the upgrade, which an idle connection would
 * otherwise hold for its whole life (about 4 KB each): the ServerResponse that stays attached to the TCP
 * socket, and the plugin's own 'error' listener on the ws socket, whose closure holds the request. The caller
 * must add its own 'error' listener at once.
 */
function releaseUpgradeRequest (socket: WebSocket, request: FastifyRequest): void {
  socket.removeAllListeners('error')
  const raw = request.raw.socket as Socket & { _httpMessage?: ServerResponse | null }
  raw._httpMessage?.detachSocket(raw)
}

function toBuffer (data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}
