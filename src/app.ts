/**
 * Builds the Fastify app from its configuration and dependencies. No listen, no signals, no process exit:
 * tests build a real app in-process and close it in teardown; src/server.ts runs it as a process.
 *
 * Contract: the caller owns the database handle (opens, migrates and closes it). `app.close()` closes every
 * WebSocket with 1012 and writes pending playback state before it resolves.
 */
import { readFileSync } from 'node:fs'
import { registerAjvFormats, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify'
import type { Config } from './config.js'
import type { DatabaseHandle } from './db/client.js'
import { AuditRetention } from './db/retention.js'
import { errorBody } from './errors.js'
import { demoRoutes } from './http/demo-routes.js'
import { registerDocs } from './http/docs.js'
import { toHttpError } from './http/errors.js'
import { createIdentityResolver, restIdentity, type IdentityResolver } from './http/identity.js'
import { opsRoutes } from './http/ops-routes.js'
import { roomRoutes } from './http/room-routes.js'
import { loggerOptions, type LogDestination } from './http/request-log.js'
import { registerSecurity } from './http/security.js'
import { validatorCompiler } from './http/validator.js'
import { createMetrics, type Metrics } from './metrics.js'
import { systemClock, type Clock } from './rooms/clock.js'
import { RoomRepository } from './rooms/room-repository.js'
import { ClusterNode } from './cluster/cluster-node.js'
import { ClusterUserLimits } from './cluster/cluster-connections.js'
import type { Hub } from './realtime/hub.js'
import { RoomHost } from './rooms/room-host.js'
import { RoomReads } from './rooms/room-reads.js'
import { SHARED_SCHEMAS } from './rooms/shapes.js'
import { useDirectWrites } from './realtime/tcp-direct-write.js'
import { registerRealtime } from './realtime/ws-route.js'
import { registerAsyncApi } from './realtime/asyncapi.js'

registerAjvFormats()

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's user id; set on every route that needs an identity. */
    userId: string
  }
}

export interface AppDependencies {
  config: Config
  database: DatabaseHandle
  clock?: Clock
  identity?: IdentityResolver
  /** A logger instance to use instead of building one from config (tests pass a silent one). */
  logger?: FastifyBaseLogger | boolean
  /** Where the app's own logger (used when `logger` is not given) writes; stdout by default. Tests read it. */
  logStream?: LogDestination
}

export interface App {
  app: FastifyInstance
  /** The owner side of this process's rooms. */
  rooms: RoomHost
  reads: RoomReads
  metrics: Metrics
}

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export async function buildApp (deps: AppDependencies): Promise<App> {
  const { config, database } = deps
  const clock = deps.clock ?? systemClock
  const app = Fastify({
    ...(typeof deps.logger === 'object' ? { loggerInstance: deps.logger } : { logger: deps.logger ?? loggerOptions(config, deps.logStream) }),
    bodyLimit: config.bodyLimitBytes,
    // Long path ids must reach validation (400 INVALID_ROOM_ID) instead of falling through to 404.
    routerOptions: { maxParamLength: 2048 },
    // Errors the router raises before any route runs (a malformed percent-encoding, a path id too long to
    // route) answer in the ErrorResponse shape too.
    frameworkErrors: (error, request, reply) => {
      const code = request.url.startsWith('/rooms/') ? 'INVALID_ROOM_ID' : 'VALIDATION_FAILED'
      void (reply as FastifyReply).status(400).send(errorBody(code, `the request URL could not be read (${error.code})`))
    },
    forceCloseConnections: true,
    return503OnClosing: true,
    // Handshake deadline (docs/security.md): a request, WebSocket upgrades included, must have arrived by then.
    // Node checks it every connectionsCheckingInterval (30 s by default, which held slow upgrades 30-90 s).
    requestTimeout: config.wsHandshakeTimeoutMs,
    http: { headersTimeout: config.wsHandshakeTimeoutMs, connectionsCheckingInterval: Math.min(1000, Math.ceil(config.wsHandshakeTimeoutMs / 4)) }
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema)
  // Process-wide: how fan-out frames are written to sockets (SOCKET_WRITES, src/realtime/tcp-direct-write.ts).
  if (!useDirectWrites(config.socketWrites === 'direct') && config.socketWrites === 'direct') app.log.info('direct socket writes are not available on this Node.js; writing through socket.write')

  const identity = deps.identity ?? await createIdentityResolver(config)
  const identify = restIdentity(identity)
  // Cluster mode (REDIS_URL): this node's writes are fenced by the tokens of the rooms it owns (src/cluster).
  let cluster: ClusterNode | undefined
  const store = new RoomRepository(database.db, (roomId) => cluster?.fenceOf(roomId))
  if (config.cluster !== undefined) cluster = new ClusterNode(config.cluster, store, app.log)
  // Cluster mode: connections per user and the per-user budgets hold across the nodes (src/cluster/cluster-connections.ts).
  const userLimits = cluster === undefined ? undefined : new ClusterUserLimits(cluster.redis, cluster.config.nodeId, config, app.log, () => clock.now())
  if (userLimits !== undefined) {
    app.addHook('onReady', async () => { await userLimits.start() })
    app.addHook('onClose', async () => { await userLimits.stop() })
  }
  const rooms = new RoomHost(store, clock, {
    disconnectGraceMs: config.disconnectGraceMs,
    emptyRoomTtlMs: config.emptyRoomTtlMs,
    maxRoomParticipants: config.maxRoomParticipants,
    maxRoomsPerHost: config.maxRoomsPerHost,
    playbackFlushMs: config.playbackFlushMs,
    maxRoomsPerConnection: config.maxRoomsPerConnection,
    roomHistorySize: config.roomHistorySize,
    chatHistorySize: config.chatHistorySize,
    replayMaxBytes: config.replayMaxBytes,
    storeWaitMs: config.storeWaitMs,
    allowedVideoSchemes: config.allowedVideoSchemes
  }, app.log, undefined, cluster?.ownership)
  const reads = new RoomReads(store, rooms, clock, config.allowedVideoSchemes)
  const metrics = createMetrics({
    openRooms: () => rooms.openRoomCount,
    participants: () => rooms.participantCount,
    ownedRooms: () => cluster?.leases.count ?? 0,
    gapsFilled: () => cluster?.broker.gapsFilled ?? 0
  })
  const router = cluster?.bind(rooms, metrics)
  if (cluster !== undefined && router !== undefined) {
    const nodeId = cluster.config.nodeId
    // Which node answered, on every response; which node serves the room, on GET /rooms/{id}.
    app.addHook('onSend', async (request, reply) => {
      reply.header('x-node-id', nodeId)
      const roomId = (request.params as { roomId?: unknown } | undefined)?.roomId
      if (request.method === 'GET' && request.routeOptions.url === '/rooms/:roomId' && typeof roomId === 'string' && reply.statusCode === 200) {
        const owner = await router.ownerOf(roomId.toLowerCase()).catch(() => null)
        if (owner !== null) reply.header('x-room-owner', owner)
      }
    })
  }

  app.setErrorHandler((error, request, reply) => {
    const { status, body } = toHttpError(error)
    if (status >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ code: body.code, msg: body.message }, 'request refused')
    metrics.errors.inc({ code: body.code, transport: 'http' })
    return reply.status(status).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    metrics.errors.inc({ code: 'NOT_FOUND', transport: 'http' })
    return reply.status(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`))
  })
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000
    )
  })

  app.decorateRequest('userId', '')
  await registerSecurity(app, { config, identify, docsPrefix: '/docs' })
  await registerDocs(app, { version: VERSION, metricsProtected: config.metricsToken !== undefined })
  await app.register(opsRoutes, { database, metrics, ...(config.metricsToken === undefined ? {} : { metricsToken: config.metricsToken }), ...(cluster === undefined ? {} : { redisReady: () => cluster!.redis.ready }) })
  await app.register(async (authenticated) => {
    authenticated.addHook('onRequest', async (request) => {
      request.userId = (await identify(request)).userId
    })
    await authenticated.register(roomRoutes, {
      rooms: { createRoom: async (hostId, name) => await rooms.createRoom(hostId, name), closeRoom: async (roomId, userId) => { await (router ?? rooms).closeRoom(roomId, userId) } },
      reads
    })
  })
  // Before the WebSocket plugin closes the sockets with 1012: hand the rooms over, so that the nodes the clients
  // reconnect to serve them at once.
  if (cluster !== undefined) app.addHook('preClose', async () => { await cluster!.handOver() })
  await registerRealtime(app, {
    rooms: router ?? rooms,
    host: rooms,
    ...(router === undefined ? {} : { makeSink: (hub: Hub) => router.sink(hub), broker: cluster!.broker, features: ['positions', 'catch_up', 'chat_history', 'viewer_reports', 'cluster'] as const }),
    ...(userLimits === undefined ? {} : { budgets: userLimits.budgets, admitUser: async (userId: string) => await userLimits.admit(userId) }),
    identity, metrics, clock, heartbeatMs: config.heartbeatMs, allowedOrigins: config.allowedOrigins, limits: config, legacy: { mode: config.legacyRelayMode, allowedVideoSchemes: config.allowedVideoSchemes } })
  registerAsyncApi(app, VERSION)
  await app.register(demoRoutes)

  app.addHook('onReady', async () => {
    await cluster?.start()
    await rooms.start()
  })
  // A cluster node hands its rooms over first (so that another node takes them at once), then stops.
  app.addHook('onClose', async () => {
    await cluster?.stop()
    await rooms.stop()
  })
  // The audit log's retention runs beside the rooms, never in their way (src/db/retention.ts).
  const retention = new AuditRetention(database.db, { days: config.auditRetentionDays, log: app.log })
  app.addHook('onReady', async () => { retention.start() })
  app.addHook('onClose', async () => { await retention.stop() })
  return { app, rooms, reads, metrics }
}
