/**
 * The OpenAPI 3.1 document (`GET /openapi.json`) and the page that renders it (`GET /docs`).
 * Shapes registered with addSchema appear as named components (Room, SyncData, ErrorResponse).
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

export async function registerDocs (app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Watch-party server',
        version,
        description: 'Rooms over REST; playback sync, chat and host hand-over over the WebSocket at `/ws` ' +
          '(see `/asyncapi.json` for its events). Every error body is an ErrorResponse; branch on `code`.'
      },
      tags: [
        { name: 'rooms', description: 'Create, list, read and close watch-party rooms' },
        { name: 'operations', description: 'Liveness, readiness, metrics' }
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'JWT mode: `sub` is the user id.' },
          devUserId: { type: 'apiKey', in: 'header', name: 'x-user-id', description: 'Development mode only: the user id itself.' }
        }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}
