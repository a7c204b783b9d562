/**
 * JWT mode of the identity resolver: the user id is the `sub` of a token the frontend's identity system signed.
 *
 * Contract:
 * * The algorithm is pinned by the configured key, never by the token: HS256 for AUTH_JWT_SECRET, RS256 or
 *   ES256 (from the key type) for AUTH_JWT_PUBLIC_KEY, RS256/ES256 for AUTH_JWKS_URL. `alg: none` and a token
 *   signed with another algorithm (e.g. HS256 keyed with the public key's text) are refused before any key is used.
 * * `exp` and `nbf` are honoured with CLOCK_TOLERANCE_SECONDS of leeway; `iss` and `aud` are checked when
 *   AUTH_JWT_ISSUER / AUTH_JWT_AUDIENCE are set. `sub` must fit the user-id grammar.
 * * Every refusal is AppError('UNAUTHORIZED') with a message safe to show (no key material, no stack). The one
 *   exception: when the identity provider's key set cannot be fetched the token may well be valid, so the
 *   answer is AppError('SERVICE_UNAVAILABLE') and the client should retry rather than sign in again.
 * * Client-chosen ids (`x-user-id`, `?userId=`) are never read.
 */
import { createRemoteJWKSet, errors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { publicKeyAlgorithm, type AuthConfig } from '../config.js'
import { AppError } from '../errors.js'
import { USER_ID_REGEX } from '../rooms/shapes.js'
import { firstValue, type CredentialSource, type Identity, type IdentityResolver } from './identity.js'

/** Leeway for `exp` and `nbf` against clock skew between the token's issuer and this server. */
export const CLOCK_TOLERANCE_SECONDS = 30
/** Longer tokens are refused unread: no identity provider issues a 16 KiB access token. */
export const MAX_TOKEN_LENGTH = 16_384

export interface JwtIdentityOptions {
  /** Abort a JWKS download after this long (default 5 s). */
  jwksTimeoutMs?: number
  /** After a download, an unknown `kid` triggers another only once this has passed (default 30 s). */
  jwksCooldownMs?: number
}

type Verify = (token: string) => Promise<JWTPayload>

export async function jwtIdentity (auth: AuthConfig, options: JwtIdentityOptions = {}): Promise<IdentityResolver> {
  const verify = await verifierFor(auth, options)

  const verifyToken = async (token: string): Promise<Identity> => {
    if (typeof token !== 'string' || token === '') throw unauthorized('the token is empty')
    if (token.length > MAX_TOKEN_LENGTH) throw unauthorized(`the token is longer than ${MAX_TOKEN_LENGTH} characters`)
    let payload: JWTPayload
    try {
      payload = await verify(token)
    } catch (err) {
      throw refusal(err)
    }
    return identityOf(payload)
  }

  return {
    mode: 'jwt',
    async resolve (source) {
      return await verifyToken(tokenFrom(source))
    },
    verifyToken
  }
}

async function verifierFor (auth: AuthConfig, options: JwtIdentityOptions): Promise<Verify> {
  const claims = {
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    ...(auth.issuer !== undefined ? { issuer: auth.issuer } : {}),
    ...(auth.audience !== undefined ? { audience: auth.audience } : {})
  }
  if (auth.jwtSecret !== undefined) {
    const secret = new TextEncoder().encode(auth.jwtSecret)
    const verifyOptions: JWTVerifyOptions = { ...claims, algorithms: ['HS256'] }
    return async (token) => (await jwtVerify(token, secret, verifyOptions)).payload
  }
  if (auth.jwtPublicKey !== undefined) {
    const alg = publicKeyAlgorithm(auth.jwtPublicKey)
    const key = await importSPKI(auth.jwtPublicKey, alg)
    const verifyOptions: JWTVerifyOptions = { ...claims, algorithms: [alg] }
    return async (token) => (await jwtVerify(token, key, verifyOptions)).payload
  }
  if (auth.jwksUrl !== undefined) {
    const remote = createRemoteJWKSet(new URL(auth.jwksUrl), {
      timeoutDuration: options.jwksTimeoutMs ?? 5000,
      cooldownDuration: options.jwksCooldownMs ?? 30_000
    })
    const getKey: JWTVerifyGetKey = async (header, token) => {
      try {
        return await remote(header, token)
      } catch (err) {
        // The key set answered but holds no key for this token: the token's fault. Anything else
        // (network, timeout, non-200, not a key set) is the provider's, and says nothing about the token.
        if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err
        throw new KeySetUnavailable(err)
      }
    }
    const verifyOptions: JWTVerifyOptions = { ...claims, algorithms: ['RS256', 'ES256'] }
    return async (token) => (await jwtVerify(token, getKey, verifyOptions)).payload
  }
  throw new Error('jwtIdentity needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL')
}

/** `Authorization: Bearer <jwt>` first; `?token=<jwt>` for browsers' WebSockets, which cannot set headers. */
function tokenFrom (source: CredentialSource): string {
  const header = firstValue(source.headers.authorization)
  if (header !== undefined) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header)
    if (match?.[1] === undefined) throw unauthorized('the Authorization header must be "Bearer <token>"')
    return match[1]
  }
  const query = source.query.token
  if (Array.isArray(query)) throw unauthorized('send one token, not several')
  if (typeof query === 'string' && query !== '') return query
  throw unauthorized('missing token: send "Authorization: Bearer <token>" (or ?token=<token> on the WebSocket)')
}

function identityOf (payload: JWTPayload): Identity {
  const { sub, exp } = payload
  if (sub === undefined) throw unauthorized('the token has no sub claim (the user id)')
  if (typeof sub !== 'string' || !USER_ID_REGEX.test(sub)) {
    throw unauthorized('the token\'s sub is not a valid user id (1-128 characters of [A-Za-z0-9_.@:-])')
  }
  return typeof exp === 'number' ? { userId: sub, expiresAt: exp * 1000 } : { userId: sub }
}

class KeySetUnavailable extends Error {
  constructor (cause: unknown) {
    super('the JSON Web Key Set could not be fetched', { cause })
    this.name = 'KeySetUnavailable'
  }
}

/** Maps a verification failure to a message a client may see; branches on jose's error codes, never on text. */
function refusal (err: unknown): AppError {
  if (err instanceof AppError) return err
  if (err instanceof KeySetUnavailable) {
    return new AppError('SERVICE_UNAVAILABLE', 'the identity provider\'s signing keys could not be fetched; try again shortly', { cause: err })
  }
  if (!(err instanceof errors.JOSEError)) return unauthorized('token invalid', err)
  switch (err.code) {
    case errors.JWTExpired.code:
      return unauthorized('token expired', err)
    case errors.JWTClaimValidationFailed.code: {
      const { claim } = err as errors.JWTClaimValidationFailed
      if (claim === 'nbf') return unauthorized('token not yet valid (nbf is in the future)', err)
      if (claim === 'iss') return unauthorized('token issuer not accepted', err)
      if (claim === 'aud') return unauthorized('token audience not accepted', err)
      return unauthorized(`token claim ${claim} invalid`, err)
    }
    case errors.JWSSignatureVerificationFailed.code:
      return unauthorized('token signature invalid', err)
    case errors.JOSEAlgNotAllowed.code:
    case errors.JOSENotSupported.code:
      return unauthorized('token algorithm not accepted', err)
    case errors.JWKSNoMatchingKey.code:
      return unauthorized('no signing key of the identity provider matches the token', err)
    case errors.JWKSMultipleMatchingKeys.code:
      return unauthorized('several signing keys of the identity provider match the token; it needs a kid', err)
    case errors.JWSInvalid.code:
    case errors.JWTInvalid.code:
      return unauthorized('token malformed', err)
    default:
      return unauthorized('token invalid', err)
  }
}

function unauthorized (message: string, cause?: unknown): AppError {
  return new AppError('UNAUTHORIZED', message, cause === undefined ? undefined : { cause })
}
