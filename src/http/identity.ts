/**
 * Who is calling: the one function REST and the WebSocket both use to turn a request into a user id.
 *
 * Contract: `resolve` returns an Identity or throws AppError('UNAUTHORIZED'); it never trusts a client-chosen
 * user id when a JWT key is configured. Development mode (no key, NODE_ENV not production) takes the id from
 * the `x-user-id` header or the `userId` query parameter (the latter for browsers' WebSockets).
 */
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
