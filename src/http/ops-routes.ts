/**
 * Operational endpoints: liveness, readiness and Prometheus metrics. None needs a user identity.
 *
 * Contract: they take no query parameters (any answers 400 VALIDATION_FAILED, so a typo in a probe's URL is
 * seen rather than ignored). With METRICS_TOKEN set, /metrics answers 401 UNAUTHORIZED (with
 * `WWW-Authenticate: Bearer`) unless the request carries `Authorization: Bearer <METRICS_TOKEN>`; the
 * comparison takes the same time whatever the guess. /healthz and /readyz stay public: orchestrators probe them
 * without credentials and they reveal nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { DatabaseHandle } from '../db/client.js'
import { AppError } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { COMMON_ERRORS, documented, errorResponse } from './responses.js'

export interface OpsRoutesOptions {
  database: DatabaseHandle
  metrics: Metrics
  /** METRICS_TOKEN: when set, /metrics requires it as a bearer token. */
  metricsToken?: string
  /** Cluster mode: whether Redis answers (a node that cannot reach it cannot prove it owns any room). */
  redisReady?: () => boolean
}

/** The security scheme name /metrics declares in the OpenAPI document when METRICS_TOKEN is set. */
export const METRICS_SECURITY_SCHEME = 'metricsToken'

const NoQuery = Type.Object({}, { additionalProperties: false })
const PUBLIC: Array<Record<string, string[]>> = []

export const opsRoutes: FastifyPluginAsyncTypebox<OpsRoutesOptions> = async (app, { database, metrics, metricsToken, redisReady }) => {
  app.get('/healthz', {
    schema: {
      tags: ['operations'],
      operationId: 'getLiveness',
      summary: 'Liveness: 200 while the process runs',
      description: 'Does not touch the database: restart the process only when this fails.',
      security: PUBLIC,
      querystring: NoQuery,
      response: {
        200: documented(Type.Object({ status: Type.Literal('ok') }), 'The process runs.', { ok: { summary: 'Alive', value: { status: 'ok' } } }),
        400: COMMON_ERRORS.unexpectedQuery
      }
    }
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      operationId: 'getReadiness',
      summary: 'Readiness: 200 when the database answers, else 503',
      description: 'Gate new traffic on it, never restart on it: during a database outage open parties go on from memory.',
      security: PUBLIC,
      querystring: NoQuery,
      response: {
        200: documented(Type.Object({ status: Type.Literal('ready') }), 'The database answered within 2 s.', { ready: { summary: 'Ready', value: { status: 'ready' } } }),
        400: COMMON_ERRORS.unexpectedQuery,
        503: errorResponse('The database did not answer within 2 s (or, in cluster mode, Redis is unreachable).', {
          SERVICE_UNAVAILABLE: { summary: 'Database down', message: 'the database does not answer' }
        })
      }
    }
  }, async (request, reply) => {
    if (redisReady !== undefined && !redisReady()) {
      return await reply.status(503).send({ error: 'Service Unavailable', message: 'Redis is unreachable: this node cannot serve rooms until it is back', code: 'SERVICE_UNAVAILABLE' })
    }
    try {
      await database.ping(2000)
      return { status: 'ready' as const }
    } catch (err) {
      request.log.warn({ err }, 'readiness check: database did not answer')
      return await reply.status(503).send({ error: 'Service Unavailable', message: 'the database does not answer', code: 'SERVICE_UNAVAILABLE' })
    }
  })

  const expected = metricsToken === undefined ? undefined : digest(metricsToken)
  app.get('/metrics', {
    onRequest: async (request, reply) => {
      if (expected === undefined || timingSafeEqual(digest(bearerOf(request)), expected)) return
      void reply.header('www-authenticate', 'Bearer realm="metrics"')
      throw new AppError('UNAUTHORIZED', 'send the metrics token: Authorization: Bearer <METRICS_TOKEN>')
    },
    schema: {
      tags: ['operations'],
      operationId: 'getMetrics',
      summary: 'Prometheus metrics (text exposition format)',
      description: metricsToken === undefined
        ? 'Public: set METRICS_TOKEN to require a bearer token.'
        : 'Requires `Authorization: Bearer <METRICS_TOKEN>`.',
      security: metricsToken === undefined ? PUBLIC : [{ [METRICS_SECURITY_SCHEME]: [] }],
      querystring: NoQuery,
      response: {
        200: {
          description: 'Process, HTTP, WebSocket and room metrics.',
          content: {
            'text/plain': {
              schema: { type: 'string' },
              example: '# HELP ws_connections Open WebSocket connections\n# TYPE ws_connections gauge\nws_connections 42\n'
            }
          }
        },
        400: COMMON_ERRORS.unexpectedQuery,
        ...(metricsToken === undefined
          ? {}
          : {
              401: errorResponse('The request does not carry the metrics token.', {
                UNAUTHORIZED: { summary: 'No or wrong token', message: 'send the metrics token: Authorization: Bearer <METRICS_TOKEN>' }
              })
            })
      }
    }
  }, async (_request, reply) => {
    return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}

/** Fixed-length digests, so that timingSafeEqual compares equal lengths and leaks nothing about the token's. */
function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

function bearerOf (request: FastifyRequest): string {
  const header = request.headers.authorization
  return typeof header === 'string' ? (/^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] ?? '') : ''
}
