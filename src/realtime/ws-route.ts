/**
 * `GET /ws`: the WebSocket endpoint. The only file that touches `ws` sockets: it wraps each in a Transport,
 * wires hub, broker, room service and dispatch together, runs the heartbeat and token expiry, and closes
 * every socket with 1012 when the app closes.
 */
import websocket from '@fastify/websocket'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { AppError, errorBody } from '../errors.js'
import type { Identity, IdentityResolver } from '../http/identity.js'
import type { Metrics } from '../metrics.js'
import type { Clock } from '../rooms/clock.js'
import type { RoomEventSink, RoomService } from '../rooms/room-service.js'
import { MemoryBroker, type Broker } from './broker.js'
import { ClientConnection } from './connection.js'
import { dispatch, REQUEST_TYPES, type HandlerDeps } from './handlers.js'
import { Hub } from './hub.js'
import { LegacyRelay } from './legacy.js'
import { CLOSE_CODES, MAX_FRAME_BYTES, PROTOCOL_VERSION, roomChannel, userChannel, type ServerEvent } from './protocol.js'
import { FloodDetector, TokenBucket } from './rate-limit.js'
import { WsTransport } from './ws-transport.js'

export interface RealtimeOptions {
  rooms: RoomService
  identity: IdentityResolver
  metrics: Metrics
  clock: Clock
  heartbeatMs: number
  /** Exact origins browsers may open the socket from; undefined allows every origin. */
  allowedOrigins?: string[]
  limits: {
    wsMessagesPerSecond: number
    wsMessageBurst: number
    wsFloodLimit: number
    maxConnectionsPerUser: number
    slowConsumerBytes: number
  }
  broker?: Broker
}

/** The most a timer can wait in Node (about 24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2_147_483_647
const KNOWN_TYPES = new Set<string>(REQUEST_TYPES)

declare module 'fastify' {
  interface FastifyRequest {
    /** The WebSocket caller's identity, or why there is none (the socket is then closed with 4401). */
    wsAuth: { identity: Identity } | { error: AppError } | null
  }
}

export async function registerRealtime (app: FastifyInstance, options: RealtimeOptions): Promise<Hub> {
  const { rooms, identity, metrics, clock } = options
  const hub = new Hub()
  const broker = options.broker ?? new MemoryBroker()
  const sockets = new Map<string, WebSocket>()
  const connectionsById = new Map<string, ClientConnection>()
  const expiryTimers = new Map<string, () => void>()

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
      const channel = roomChannel(roomId)
      const frame = Buffer.from(JSON.stringify({ type: event.type, channel, data: event.data }))
      broker.publish({ channel, frame, type: event.type, exceptConnectionId })
    },
    subscribe: (roomId, connectionId) => { hub.subscribe(roomChannel(roomId), connectionId) },
    unsubscribe: (roomId, connectionId) => { hub.unsubscribe(roomChannel(roomId), connectionId) },
    dropRoom: (roomId) => { hub.dropChannel(roomChannel(roomId)) }
  }
  rooms.setSink(sink)

  const scheduleExpiry = (connection: ClientConnection, expiresAt: number | undefined): void => {
    expiryTimers.get(connection.id)?.()
    expiryTimers.delete(connection.id)
    if (expiresAt === undefined) return
    const wait = Math.min(Math.max(0, expiresAt - clock.now()), MAX_TIMER_MS)
    expiryTimers.set(connection.id, clock.setTimeout(() => {
      if (clock.now() < expiresAt) {
        scheduleExpiry(connection, expiresAt)
        return
      }
      connection.close(CLOSE_CODES.UNAUTHORIZED, 'token expired; reconnect with a fresh token')
    }, wait))
  }

  const deps: HandlerDeps = {
    rooms,
    identity,
    legacy: new LegacyRelay((message) => { broker.publish(message) }, () => clock.now()),
    now: () => clock.now(),
    onTokenRefreshed: (connection, refreshed) => { scheduleExpiry(connection, refreshed.expiresAt) },
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
      await dispatch(connection, request, deps)
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

  // One timer for all sockets: a socket that did not answer the previous ping is terminated.
  const heartbeat = setInterval(() => {
    for (const [id, socket] of sockets) {
      const connection = connectionsById.get(id)
      if (connection === undefined) continue
      if (!connection.alive) {
        socket.terminate()
        continue
      }
      connection.alive = false
      socket.ping()
    }
  }, options.heartbeatMs)
  heartbeat.unref()
  await app.register(websocket, {
    options: { maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false, clientTracking: false },
    preClose: async () => {
      clearInterval(heartbeat)
      for (const connection of hub.all()) {
        (connection as ClientConnection).close(CLOSE_CODES.SERVICE_RESTART, 'server restarting; reconnect and rejoin')
      }
    }
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
      try {
        request.wsAuth = { identity: await identity.resolve({ headers: request.headers, query: request.query as Record<string, unknown> }) }
      } catch (err) {
        request.wsAuth = { error: err instanceof AppError ? err : new AppError('UNAUTHORIZED', 'could not verify the credentials') }
      }
    }
  }, (socket, request) => {
    releaseUpgradeRequest(socket, request)
    // Before anything can fail: a ws socket that emits 'error' with no listener would crash the process.
    const remoteAddress = request.ip // not the request itself: the closure lives as long as the socket
    socket.on('error', (err) => { app.log.debug({ err, remoteAddress }, 'socket error') })
    const auth = request.wsAuth
    if (auth === null || 'error' in auth) {
      // Accept, then close, so that a browser can read why (it cannot read a refused upgrade). A token that
      // could not be checked (identity provider unreachable) is not a bad token: the client should retry.
      const code = auth?.error.code === 'SERVICE_UNAVAILABLE' ? CLOSE_CODES.TRY_AGAIN_LATER : CLOSE_CODES.UNAUTHORIZED
      socket.close(code, (auth?.error.message ?? 'unauthorized').slice(0, 120))
      return
    }
    const userId = auth.identity.userId
    if (hub.subscriberCount(userChannel(userId)) >= options.limits.maxConnectionsPerUser) {
      metrics.errors.inc({ code: 'RATE_LIMITED', transport: 'ws' })
      socket.close(CLOSE_CODES.FLOODING, `too many connections for this user (at most ${options.limits.maxConnectionsPerUser})`)
      return
    }
    const transport = new WsTransport(socket, options.limits.slowConsumerBytes, (unsentBytes) => {
      metrics.slowConsumers.inc()
      app.log.warn({ userId, unsentBytes }, 'slow consumer terminated')
    })
    const connection = new ClientConnection(userId, transport, hooks, {
      bucket: new TokenBucket(options.limits.wsMessagesPerSecond, options.limits.wsMessageBurst, clock.now()),
      flood: new FloodDetector(options.limits.wsFloodLimit),
      now: () => clock.now()
    })
    sockets.set(connection.id, socket)
    connectionsById.set(connection.id, connection)
    hub.add(connection)
    hub.subscribe(userChannel(connection.userId), connection.id)
    metrics.wsConnections.inc()
    scheduleExpiry(connection, auth.identity.expiresAt)

    socket.on('message', (data, isBinary) => {
      connection.receive(toBuffer(data), isBinary)
    })
    socket.on('pong', () => { connection.alive = true })
    socket.on('close', () => {
      connection.closed = true
      sockets.delete(connection.id)
      connectionsById.delete(connection.id)
      expiryTimers.get(connection.id)?.()
      expiryTimers.delete(connection.id)
      hub.remove(connection.id)
      metrics.wsConnections.dec()
      // After the requests already received have been handled: a join still writing to the database when
      // the socket dropped must count as joined, so that the reconnect grace covers it too.
      void connection.settled().then(() => { rooms.disconnect({ connectionId: connection.id, userId: connection.userId }) })
    })

    const hello: ServerEvent = {
      type: 'connected',
      data: { userId: connection.userId, connectionId: connection.id, serverTime: clock.now(), protocolVersion: PROTOCOL_VERSION, heartbeatMs: options.heartbeatMs }
    }
    connection.send(hello)
  })

  app.addHook('onClose', async () => { await broker.close() })
  return hub
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
