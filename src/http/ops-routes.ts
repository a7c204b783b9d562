/**
 * Operational endpoints: liveness, readiness and Prometheus metrics. None needs an identity.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { DatabaseHandle } from '../db/client.js'
import type { Metrics } from '../metrics.js'
import { ErrorRef } from './schema-ref.js'

export interface OpsRoutesOptions {
  database: DatabaseHandle
  metrics: Metrics
}

const Status = Type.Object({ status: Type.String() })

export const opsRoutes: FastifyPluginAsyncTypebox<OpsRoutesOptions> = async (app, { database, metrics }) => {
  app.get('/healthz', {
    schema: { tags: ['operations'], summary: 'Liveness: 200 while the process runs', response: { 200: Status } }
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: 200 when the database answers, else 503',
      response: { 200: Status, 503: ErrorRef }
    }
  }, async (request, reply) => {
    try {
      await database.ping(2000)
      return { status: 'ready' }
    } catch (err) {
      request.log.warn({ err }, 'readiness check: database did not answer')
      return await reply.status(503).send({ error: 'Service Unavailable', message: 'the database does not answer', code: 'SERVICE_UNAVAILABLE' })
    }
  })

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (text exposition format)' }
  }, async (_request, reply) => {
    return await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
