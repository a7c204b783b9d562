/**
 * What every HTTP request passes before its route: security headers (helmet), CORS and the per-user rate limit.
 *
 * Contract:
 * * Registered before any route, so every route and the 404 handler get the headers, the CORS answer and the
 *   limit; a 401 or 429 still carries the CORS headers, so browsers can read why.
 * * The rate limit keys on the caller's user id when the request carries a valid identity, else on its IP:
 *   floods of bad tokens are limited per IP before the route answers 401. /healthz, /readyz and /metrics are
 *   not limited (orchestrators poll them), nor are CORS preflights (answered by the CORS hook before the limit).
 * * An exceeded limit answers 429 RATE_LIMITED as an ErrorResponse, with Retry-After in seconds.
 * * CORS never sends Access-Control-Allow-Credentials; preflights allow exactly CORS_ALLOWED_HEADERS.
 */
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { AppError } from '../errors.js'
import type { Identity } from './identity.js'

export interface SecurityOptions {
  config: Pick<Config, 'allowedOrigins' | 'corsAllowedHeaders' | 'restRateLimitPerMinute'>
  /** The caller's identity, resolved at most once per request; rejects when there is none. */
  identify: (request: FastifyRequest) => Promise<Identity>
  /** Path prefix of the API documentation page, which needs a CSP that lets swagger-ui run. */
  docsPrefix?: string
}

/**
 * Routes the REST budget does not count: infrastructure probes, and the WebSocket upgrade, which has limits of
 * its own (MAX_CONNECTIONS_PER_USER, per-connection message buckets). A per-IP REST budget on upgrades would
 * refuse a watch party of viewers behind one NAT.
 */
export const RATE_LIMIT_EXEMPT_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', '/ws'])

/** Headers a browser script may read on a cross-origin answer. */
const EXPOSED_HEADERS = ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']

/** JSON answers render nothing: the strictest policy (OWASP REST cheat sheet). */
const API_CSP = { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } }
/**
 * swagger-ui loads its scripts, styles and the spec from this server; it injects inline styles and shows data:
 * images. No upgrade-insecure-requests: it would break the page on a plain-http deployment.
 */
const DOCS_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    connectSrc: ["'self'"],
    fontSrc: ["'self'", 'data:'],
    formAction: ["'self'"],
    frameAncestors: ["'self'"],
    imgSrc: ["'self'", 'data:'],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", "'unsafe-inline'"]
  }
}

/**
 * True when a browser page from `origin` may use this server. Requests without an Origin header do not come
 * from a cross-origin page (curl, servers, same-origin navigation) and are allowed: origin checks only bind browsers.
 */
export function isOriginAllowed (allowedOrigins: readonly string[] | undefined, origin: string | undefined): boolean {
  if (allowedOrigins === undefined || origin === undefined) return true
  return allowedOrigins.includes(origin)
}

export async function registerSecurity (app: FastifyInstance, options: SecurityOptions): Promise<void> {
  const { config, identify } = options
  const docsPrefix = options.docsPrefix ?? '/docs'

  // Routes of the docs page get the looser policy, unless they bring a policy of their own (the pages this
  // server renders itself need no script at all). This hook runs before helmet's own onRoute hook, which
  // turns the route's `helmet` option into its configuration.
  app.addHook('onRoute', (route) => {
    if (route.helmet === undefined && (route.url === docsPrefix || route.url.startsWith(`${docsPrefix}/`))) {
      route.helmet = { contentSecurityPolicy: DOCS_CSP }
    }
  })
  await app.register(helmet, { contentSecurityPolicy: API_CSP })

  await app.register(cors, {
    // Unset: any page may call; the API uses bearer tokens, not cookies, so `*` exposes nothing ambient.
    origin: config.allowedOrigins ?? '*',
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: config.corsAllowedHeaders,
    exposedHeaders: EXPOSED_HEADERS,
    // No Access-Control-Allow-Credentials: credentials travel in headers the page sets itself (Authorization),
    // never in cookies, so a page needs no `credentials: 'include'`; and with `*` browsers would refuse it.
    credentials: false,
    maxAge: 600,
    // An OPTIONS without Origin gets an empty 204 rather than a text/plain 400: every error stays an ErrorResponse.
    strictPreflight: false
  })

  await app.register(rateLimit, {
    global: false,
    max: config.restRateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: async (request) => {
      try {
        return `user:${(await identify(request)).userId}`
      } catch {
        return `ip:${request.ip}`
      }
    },
    errorResponseBuilder: (_request, context) =>
      new AppError('RATE_LIMITED', `too many requests: at most ${context.max} a minute; retry in ${context.after}`)
  })
  // One root hook rather than the plugin's per-route hooks: it runs before any route's own onRequest (the 401
  // of a bad token comes after counting) and for the 404 handler too. Exempt routes skip the identity lookup.
  const limit = app.rateLimit()
  app.addHook('onRequest', async function restRateLimit (request, reply) {
    if (RATE_LIMIT_EXEMPT_ROUTES.has(request.routeOptions.url ?? '')) return
    await limit.call(this, request, reply)
  })
}
