/**
 * Reading a JWT's `exp` without verifying it: the client only needs to know when to ask for the next token.
 * The server is the one that verifies.
 */
import { decodeBase64Url } from './host.js'

/** The token's `exp` as epoch ms, or undefined when it has none or is not a readable JWT. */
export function tokenExpiresAt (token: string): number | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined || payload === '') return undefined
  try {
    const claims = JSON.parse(decodeBase64Url(payload)) as { exp?: unknown }
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined
  } catch {
    return undefined
  }
}
