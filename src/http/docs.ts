/**
 * The API documentation: the OpenAPI 3.1 document (`GET /openapi.json`), the Swagger UI page that renders it
 * (`GET /docs`), the WebSocket protocol page rendered from the AsyncAPI document (`GET /docs/websocket`) and
 * the front page (`GET /`) that points at them.
 *
 * Contract: the OpenAPI document passes `redocly lint` (recommended rules) with no error and no warning
 * (test/http/openapi-lint.test.ts); it declares only what this configuration does (the metrics token scheme
 * exists only with METRICS_TOKEN). Its one server is `/`, relative to wherever the document was fetched from,
 * so it is true behind any host, port or TLS terminator. Shapes registered with addSchema appear as named
 * components (Room, SyncData, ErrorResponse).
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import { registerHomePage } from './home-page.js'
import { METRICS_SECURITY_SCHEME } from './ops-routes.js'
import { registerWebSocketPage, WEBSOCKET_PAGE } from './websocket-page.js'

export interface DocsOptions {
  version: string
  /** True when METRICS_TOKEN is set: /metrics then declares the bearer scheme that protects it. */
  metricsProtected: boolean
}

export async function registerDocs (app: FastifyInstance, options: DocsOptions): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Watch-party server',
        version: options.version,
        license: { name: 'MIT', identifier: 'MIT' },
        description: 'Rooms over REST; playback sync, chat and host hand-over over the WebSocket at `/ws`: ' +
          `see [the WebSocket protocol](${WEBSOCKET_PAGE}) (from \`/asyncapi.json\`, the AsyncAPI document). ` +
          'Every error body is an ErrorResponse; branch on `code`, show `message`.'
      },
      servers: [{ url: '/', description: 'This server: the origin the document was fetched from.' }],
      tags: [
        { name: 'rooms', description: 'Create, list, read and close watch-party rooms' },
        { name: 'operations', description: 'Liveness, readiness, metrics' }
      ],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'JWT mode: `sub` is the user id.' },
          devUserId: { type: 'apiKey', in: 'header', name: 'x-user-id', description: 'Development mode only: the user id itself.' },
          ...(options.metricsProtected
            ? { [METRICS_SECURITY_SCHEME]: { type: 'http', scheme: 'bearer', description: 'The value of METRICS_TOKEN.' } }
            : {})
        }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  registerWebSocketPage(app)
  registerHomePage(app)
}
