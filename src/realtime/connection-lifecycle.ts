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
 * - The socket is closed with 4401 once its token has expired (`expiresAt`), unless refreshed before.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { AppError } from '../errors.js'
import type { Identity } from '../http/identity.js'
import type { Metrics } from '../metrics.js'
import type { Clock } from '../rooms/clock.js'
import type { RoomService } from '../rooms/room-service.js'
import { ClientConnection, type ConnectionHooks } from './connection.js'
import type { Hub } from './hub.js'
import { CLOSE_CODES, userChannel, type ServerEvent } from './protocol.js'
import { FloodDetector, TokenBucket } from './rate-limit.js'
import { WsTransport } from './ws-transport.js'

/** What the upgrade's checks decided about the caller, before the socket exists. */
export type UpgradeVerdict = { identity: Identity } | { error: AppError }

export interface LifecycleLimits {
  wsMessagesPerSecond: number
  wsMessageBurst: number
  wsFloodLimit: number
  maxConnectionsPerUser: number
  slowConsumerBytes: number
}

export interface LifecycleOptions {
  hub: Hub
  rooms: Pick<RoomService, 'disconnect'>
  metrics: Metrics
  clock: Clock
  logger: FastifyBaseLogger
  hooks: ConnectionHooks
  heartbeatMs: number
  limits: LifecycleLimits
  /** The first event a new connection gets (`connected`). */
  hello: (connection: ClientConnection) => ServerEvent
}

/** The most a timer can wait in Node (about 24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2_147_483_647

export class ConnectionLifecycle {
  private readonly sockets = new Map<string, WebSocket>()
  private readonly connectionsById = new Map<string, ClientConnection>()
  private readonly expiryTimers = new Map<string, () => void>()
  private heartbeat: NodeJS.Timeout | undefined

  constructor (private readonly options: LifecycleOptions) {}

  /** Starts the heartbeat: one timer for all sockets; a socket that did not answer the previous ping is terminated. */
  start (): void {
    if (this.heartbeat !== undefined) return
    this.heartbeat = setInterval(() => {
      for (const [id, socket] of this.sockets) {
        const connection = this.connectionsById.get(id)
        if (connection === undefined) continue
        if (!connection.alive) {
          socket.terminate()
          continue
        }
        connection.alive = false
        socket.ping()
      }
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

  /** (Re)arms the 4401 close at the token's expiry; undefined means the credential never expires. */
  scheduleExpiry (connection: ClientConnection, expiresAt: number | undefined): void {
    const { clock } = this.options
    this.expiryTimers.get(connection.id)?.()
    this.expiryTimers.delete(connection.id)
    if (expiresAt === undefined) return
    const wait = Math.min(Math.max(0, expiresAt - clock.now()), MAX_TIMER_MS)
    this.expiryTimers.set(connection.id, clock.setTimeout(() => {
      if (clock.now() < expiresAt) {
        this.scheduleExpiry(connection, expiresAt)
        return
      }
      connection.close(CLOSE_CODES.UNAUTHORIZED, 'token expired; reconnect with a fresh token')
    }, wait))
  }

  /** Takes over a socket whose upgrade just completed. Never throws. */
  accept (socket: WebSocket, request: FastifyRequest, verdict: UpgradeVerdict | null): void {
    const { hub, metrics, clock, logger, limits } = this.options
    releaseUpgradeRequest(socket, request)
    // Before anything can fail: a ws socket that emits 'error' with no listener would crash the process.
    const remoteAddress = request.ip // not the request itself: the closure lives as long as the socket
    socket.on('error', (err) => { logger.debug({ err, remoteAddress }, 'socket error') })
    if (verdict === null || 'error' in verdict) {
      // A token that could not be checked (identity provider unreachable) is not a bad token: the client should retry.
      const code = verdict?.error.code === 'SERVICE_UNAVAILABLE' ? CLOSE_CODES.TRY_AGAIN_LATER : CLOSE_CODES.UNAUTHORIZED
      socket.close(code, (verdict?.error.message ?? 'unauthorized').slice(0, 120))
      return
    }
    const userId = verdict.identity.userId
    if (hub.subscriberCount(userChannel(userId)) >= limits.maxConnectionsPerUser) {
      metrics.errors.inc({ code: 'RATE_LIMITED', transport: 'ws' })
      socket.close(CLOSE_CODES.FLOODING, `too many connections for this user (at most ${limits.maxConnectionsPerUser})`)
      return
    }
    const transport = new WsTransport(socket, limits.slowConsumerBytes, (unsentBytes) => {
      metrics.slowConsumers.inc()
      logger.warn({ userId, unsentBytes }, 'slow consumer terminated')
    })
    const connection = new ClientConnection(userId, transport, this.options.hooks, {
      bucket: new TokenBucket(limits.wsMessagesPerSecond, limits.wsMessageBurst, clock.now()),
      flood: new FloodDetector(limits.wsFloodLimit),
      now: () => clock.now()
    })
    this.sockets.set(connection.id, socket)
    this.connectionsById.set(connection.id, connection)
    hub.add(connection)
    hub.subscribe(userChannel(connection.userId), connection.id)
    metrics.wsConnections.inc()
    this.scheduleExpiry(connection, verdict.identity.expiresAt)

    socket.on('message', (data, isBinary) => {
      connection.receive(toBuffer(data), isBinary)
    })
    socket.on('pong', () => { connection.alive = true })
    socket.on('close', () => { this.release(connection) })
    connection.send(this.options.hello(connection))
  }

  private release (connection: ClientConnection): void {
    connection.closed = true
    this.sockets.delete(connection.id)
    this.connectionsById.delete(connection.id)
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
