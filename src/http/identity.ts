/**
 * Who is calling: the one function REST and the WebSocket both use to turn a request into a user id.
 *
 * Contract: `resolve` returns an Identity or throws AppError('UNAUTHORIZED') (in JWT mode with AUTH_JWKS_URL,
 * AppError('SERVICE_UNAVAILABLE') when the provider's keys cannot be fetched); it never trusts a client-chosen
 * user id when a JWT key is configured (see jwt-identity.ts). Development mode (no key, NODE_ENV not
 * production) takes the id from the `x-user-id` header or the `userId` query parameter (the latter for
 * browsers' WebSockets).
 */
import { isJwtMode, type Config } from '../config.js'
import { AppError } from '../errors.js'
import { USER_ID_REGEX } from '../rooms/shapes.js'

export interface Identity {
  userId: string
  /** Epoch ms after which the credential is no longer valid; undefined when it does not expire. */
  expiresAt?: number
}

/** The parts of an HTTP request (REST call or WebSocket upgrade) that carry credentials. */
export interface CredentialSource {
  headers: Record<string, string | string[] | undefined>
  query: Record<string, unknown>
}

export interface IdentityResolver {
  readonly mode: 'development' | 'jwt'
  resolve (source: CredentialSource): Promise<Identity>
  /** Checks a token sent later over an open WebSocket (`auth` request). */
  verifyToken (token: string): Promise<Identity>
}

/**
 * The resolver the configuration asks for: JWT mode when any key is configured, else development mode.
 * Refuses development mode under NODE_ENV=production (loadConfig already does; this guards other callers).
 */
export async function createIdentityResolver (config: Pick<Config, 'auth' | 'nodeEnv'>): Promise<IdentityResolver> {
  if (isJwtMode(config.auth)) {
    const { jwtIdentity } = await import('./jwt-identity.js')
    return await jwtIdentity(config.auth)
  }
  if (config.nodeEnv === 'production') {
    throw new Error('NODE_ENV=production needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL')
  }
  return developmentIdentity()
}

/**
 * Resolves each REST request at most once however many hooks ask (the rate limiter keys on the user id
 * before the route's own check). Only headers are read: query credentials are for browsers' WebSockets,
 * and on REST they would end up in access logs and browser history.
 */
export function restIdentity (resolver: IdentityResolver): (request: Pick<CredentialSource, 'headers'>) => Promise<Identity> {
  const resolved = new WeakMap<object, Promise<Identity>>()
  return async (request) => {
    let identity = resolved.get(request)
    if (identity === undefined) {
      identity = resolver.resolve({ headers: request.headers, query: {} })
      resolved.set(request, identity)
    }
    return await identity
  }
}

export function developmentIdentity (): IdentityResolver {
  return {
    mode: 'development',
    async resolve (source) {
      const header = firstValue(source.headers['x-user-id'])
      const query = typeof source.query.userId === 'string' ? source.query.userId : undefined
      const userId = header ?? query
      if (userId === undefined) throw new AppError('UNAUTHORIZED', 'development mode: send the user id in the x-user-id header (or ?userId= on the WebSocket)')
      if (!USER_ID_REGEX.test(userId)) throw new AppError('UNAUTHORIZED', 'the user id must be 1-128 characters of [A-Za-z0-9_.@:-]')
      return { userId }
    },
    async verifyToken () {
      throw new AppError('VALIDATION_FAILED', 'the server runs in development mode: there is no token to refresh')
    }
  }
}

export function firstValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
