/**
 * `GET /ws`: the WebSocket endpoint's wiring. Registers @fastify/websocket and the route, builds hub, broker,
 * the room service's sink and the handlers' dependencies, and checks each upgrade (origin, identity) before
 * it completes. What happens to a socket afterwards (refusals, heartbeat, token expiry, close) is
 * connection-lifecycle.ts's; app close closes every socket with 1012 through it.
 */
import websocket from '@fastify/websocket'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AppError, errorBody } from '../errors.js'
import type { LegacyRelayMode } from '../config.js'
import type { IdentityResolver } from '../http/identity.js'
import { CLOCK_TOLERANCE_SECONDS } from '../http/jwt-identity.js'
import type { Metrics } from '../metrics.js'
import type { Clock } from '../rooms/clock.js'
import type { RoomHost } from '../rooms/room-host.js'
import type { RoomEventSink } from '../rooms/room-ports.js'
import { MemoryBroker, type Broker } from './broker.js'
import { AddressConnections } from './address-limits.js'
import { ConnectionLifecycle, type LifecycleLimits, type UpgradeVerdict } from './connection-lifecycle.js'
import type { ClientConnection } from './connection.js'
import { dispatch, REQUEST_TYPES, type HandlerDeps, type RoomOps } from './handlers.js'
import { roomMessage } from './event-frame.js'
import { Hub } from './hub.js'
import { LegacyRelay } from './legacy.js'
import { UpgradeGate } from './upgrade-gate.js'
import { MEMBERSHIP_REQUESTS, MemoryUserBudgets, userKey, type BudgetLimits, type UserBudgets } from './user-budgets.js'
import { MAX_FRAME_BYTES, PROTOCOL_VERSION, roomChannel, type Feature } from './protocol.js'

export interface RealtimeOptions {
  /** The room operations requests are dispatched to: the room host, or in cluster mode the router in front of it. */
  rooms: RoomOps
  /** The room host whose events this layer delivers. */
  host: RoomHost
  /** Cluster mode: the sink the room host publishes to (the hub is this layer's); by default hub + broker. */
  makeSink?: (hub: Hub) => RoomEventSink
  /** The features `connected` lists. */
  features?: readonly Feature[]
  identity: IdentityResolver
  metrics: Metrics
  clock: Clock
  heartbeatMs: number
  /** Exact origins browsers may open the socket from; undefined allows every origin. */
  allowedOrigins?: string[]
  limits: LifecycleLimits & BudgetLimits & { maxConnectionsPerAddress: number, wsHandshakeTimeoutMs: number }
  legacy: { mode: LegacyRelayMode, allowedVideoSchemes: readonly string[] }
  broker?: Broker
  /** Per-user budgets; by default this process's own (MemoryUserBudgets). */
  budgets?: UserBudgets
  /**
   * Cluster mode: awaited at the upgrade once the caller is authenticated, before the socket exists (a round trip
   * per connection, never per message). Resolves with what to call once the TCP connection closes, or with the
   * AppError to refuse the connection with (RATE_LIMITED: 1013).
   */
  admitUser?: (userId: string) => Promise<{ release: () => void } | AppError>
}

/** The protocol 1.1 features this server has (cluster comes with REDIS_URL). */
const FEATURES_ON = ['positions', 'catch_up', 'chat_history', 'viewer_reports'] as const satisfies readonly Feature[]
const KNOWN_TYPES = new Set<string>(REQUEST_TYPES)

declare module 'fastify' {
  interface FastifyRequest {
    /** The WebSocket caller's identity, or why there is none (the socket is then closed with 4401 or 1013). */
    wsAuth: UpgradeVerdict | null
  }
}

export async function registerRealtime (app: FastifyInstance, options: RealtimeOptions): Promise<Hub> {
  const { rooms, identity, metrics, clock } = options
  const hub = new Hub()
  const broker = options.broker ?? new MemoryBroker()
  const budgets = options.budgets ?? new MemoryUserBudgets(options.limits)
  // Every TCP connection of the server is counted from its accept: what bounds one address's descriptors.
  const addresses = new AddressConnections(options.limits.maxConnectionsPerAddress)
  app.server.on('connection', (socket: Socket) => { addresses.accept(socket) })
  const gate = new UpgradeGate({
    identity,
    budgets,
    addresses,
    clock,
    handshakeTimeoutMs: options.limits.wsHandshakeTimeoutMs,
    connectsPerAddressPerMinute: options.limits.wsConnectsPerAddressPerMinute
  })

  broker.onMessage((message) => {
    const started = performance.now()
    const coalesceKey = message.type === 'sync' ? message.channel : undefined
    const delivered = hub.deliver(message.channel, message.frame, message.exceptConnectionId, coalesceKey)
    if (delivered > 0) {
      metrics.messagesOut.inc({ type: message.type }, delivered)
      metrics.fanoutSeconds.observe((performance.now() - started) / 1000)
    }
  })

  const sink: RoomEventSink = {
    publish (roomId, event, exceptConnectionId) {
      broker.publish(roomMessage(roomId, event, exceptConnectionId))
    },
    sendTo (connectionId, event) {
      hub.sendTo(connectionId, Buffer.from(JSON.stringify(event)))
      metrics.messagesOut.inc({ type: event.type })
    },
    subscribe: (roomId, connectionId) => { hub.subscribe(roomChannel(roomId), connectionId) },
    unsubscribe: (roomId, connectionId) => { hub.unsubscribe(roomChannel(roomId), connectionId) },
    dropRoom: (roomId) => { hub.dropChannel(roomChannel(roomId)) }
  }
  options.host.setSink(options.makeSink?.(hub) ?? sink)

  const deps: HandlerDeps = {
    rooms,
    identity,
    legacy: new LegacyRelay((message) => { broker.publish(message) }, () => clock.now(), {
      ...options.legacy,
      logger: app.log,
      subscribe: (channel, connectionId) => { hub.subscribe(channel, connectionId) }
    }),
    preciseNow: () => clock.preciseNow?.() ?? clock.now(),
    onTokenRefreshed: (connection, refreshed) => { lifecycle.scheduleExpiry(connection, refreshed.expiresAt) },
    onLegacyUse: (connection, type) => {
      metrics.legacy.inc({ type })
      app.log.warn({ userId: connection.userId, type }, 'deprecated 1-on-1 sync channel used')
      if (!connection.legacyWarned) {
        connection.legacyWarned = true
        connection.send({
          type: 'warning',
          data: { code: 'DEPRECATED', message: '1-on-1 sync channels (chatId "sync-<a>--<b>") and `sync` with roomId are deprecated: use rooms (create_room, join_room, host_sync)' }
        })
      }
    }
  }

  const hooks = {
    logger: app.log,
    dispatch: async (connection: ClientConnection, request: Parameters<typeof dispatch>[1]) => {
      metrics.messagesIn.inc({ type: KNOWN_TYPES.has(request.type) ? request.type : 'unknown' })
      // Before dispatch: each membership request is a database write with an audit row.
      if (MEMBERSHIP_REQUESTS.has(request.type) && !budgets.membershipWrite(userKey(connection.userId), clock.now())) {
        throw new AppError('RATE_LIMITED', `too many create_room/join_room/leave_room requests (at most ${options.limits.wsMembershipWritesPerSecond} a second); this one was not handled`)
      }
      deps.legacy.admit(connection, request)
      await dispatch(connection, request, deps)
      deps.legacy.used(connection, request)
    },
    onSent: (type: string) => { metrics.messagesOut.inc({ type }) },
    onError: (connection: ClientConnection, code: string, requestType: string | undefined, data: Record<string, unknown> | undefined) => {
      metrics.errors.inc({ code, transport: 'ws' })
      if (code === 'NOT_HOST' || code === 'NOT_IN_ROOM') {
        const event = requestType !== undefined && KNOWN_TYPES.has(requestType) ? requestType : 'unknown'
        metrics.refusals.inc({ event, code })
        app.log.warn({ userId: connection.userId, roomId: data?.roomId, event, code }, 'request refused')
      }
    }
  }

  const lifecycle = new ConnectionLifecycle({
    hub,
    rooms,
    metrics,
    clock,
    logger: app.log,
    hooks,
    heartbeatMs: options.heartbeatMs,
    limits: options.limits,
    budgets,
    tokenLeewayMs: CLOCK_TOLERANCE_SECONDS * 1000,
    hello: (connection) => ({
      type: 'connected',
      data: { userId: connection.userId, connectionId: connection.id, serverTime: clock.now(), protocolVersion: PROTOCOL_VERSION, heartbeatMs: options.heartbeatMs, features: [...(options.features ?? FEATURES_ON)] }
    })
  })
  lifecycle.start()
  await app.register(websocket, {
    options: { maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false },
    preClose: async () => { lifecycle.closeAll() }
  })

  app.decorateRequest('wsAuth', null)
  app.get('/ws', {
    websocket: true,
    schema: { hide: true },
    preValidation: async (request: FastifyRequest, reply) => {
      // Browsers always send Origin; a page from another site must not ride the user's credentials (CSWSH).
      // Clients without Origin (scripts, servers) are not browsers and are let through to authentication.
      const origin = request.headers.origin
      if (options.allowedOrigins !== undefined && origin !== undefined && !options.allowedOrigins.includes(origin)) {
        metrics.errors.inc({ code: 'ORIGIN_NOT_ALLOWED', transport: 'ws' })
        return await reply.status(403).send(errorBody('ORIGIN_NOT_ALLOWED', `origin ${origin.slice(0, 200)} is not in ALLOWED_ORIGINS`))
      }
      const verdict = await gate.check(request)
      // A dropped handshake's socket is destroyed: the upgrade then never completes and the handler never runs.
      request.wsAuth = verdict === 'dropped' ? null : await admitUser(verdict, request)
    }
  }, (socket, request) => { lifecycle.accept(socket, request, request.wsAuth) })

  /** The cluster's admission of an authenticated caller; what it grants lasts as long as the TCP connection. */
  async function admitUser (verdict: UpgradeVerdict, request: FastifyRequest): Promise<UpgradeVerdict> {
    if (options.admitUser === undefined || !('identity' in verdict)) return verdict
    const admission = await options.admitUser(verdict.identity.userId)
    if (admission instanceof AppError) return { error: admission }
    const socket = request.raw.socket
    if (socket.destroyed) admission.release()
    else socket.once('close', admission.release)
    return verdict
  }

  app.addHook('onClose', async () => { await broker.close() })
  return hub
}
