/**
 * Token minting for the auth tests: what a frontend's backend or identity provider would sign.
 * Not a test file; tap loads it and finds no tests, like the other helpers.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose'
import type { Test } from 'tap'

/** 32+ bytes, as the config requires for HS256. */
export const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!'

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)

export interface SignOptions {
  alg?: string
  kid?: string
  /** Claims to add or override; `undefined` removes a default (sub, exp). */
  claims?: Record<string, unknown>
}

/** A token for `sub` valid for five minutes unless claims say otherwise. */
export async function sign (key: CryptoKey | Uint8Array, sub: string | undefined, options: SignOptions = {}): Promise<string> {
  const payload: Record<string, unknown> = { sub, iat: nowSeconds(), exp: nowSeconds() + 300, ...options.claims }
  for (const [name, value] of Object.entries(payload)) if (value === undefined) Reflect.deleteProperty(payload, name)
  return await new SignJWT(payload as JWTPayload)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', ...(options.kid !== undefined ? { kid: options.kid } : {}) })
    .sign(key)
}

export const secretKey = (secret: string = SECRET): Uint8Array => new TextEncoder().encode(secret)

export async function signHs256 (sub: string | undefined, claims: Record<string, unknown> = {}, secret: string = SECRET): Promise<string> {
  return await sign(secretKey(secret), sub, { claims })
}

/** An unsecured JWT (`alg: none`), hand-assembled: no library will sign one. */
export function unsecured (payload: Record<string, unknown>): string {
  const encode = (value: unknown): string => base64url.encode(JSON.stringify(value))
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(payload)}.`
}

export interface KeyPair {
  alg: 'RS256' | 'ES256'
  privateKey: CryptoKey
  publicKey: CryptoKey
  /** SPKI PEM, as AUTH_JWT_PUBLIC_KEY takes it. */
  pem: string
}

export async function keyPair (alg: 'RS256' | 'ES256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { alg, privateKey, publicKey, pem: await exportSPKI(publicKey) }
}

/** The Authorization header of a bearer token. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

export interface JwksServer {
  url: string
  /** How many times the key set was downloaded. */
  requests: () => number
  /** What the next downloads answer: an HTTP status and, for 200, any JSON body. */
  answer: (status: number, body?: unknown) => void
}

/** A key-set endpoint on loopback, as an identity provider hosts one; closed in teardown. */
export async function jwksServer (t: Test, keys: Array<{ publicKey: CryptoKey, kid: string, alg: string }>): Promise<JwksServer> {
  let status = 200
  let body: unknown = { keys: await Promise.all(keys.map(async ({ publicKey, kid, alg }): Promise<JWK> => ({ ...await exportJWK(publicKey), kid, alg, use: 'sig' }))) }
  let requests = 0
  const server: Server = createServer((_request, response) => {
    requests++
    if (status !== 200) {
      response.writeHead(status).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise<void>((resolve) => server.close(() => { resolve() })) })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    requests: () => requests,
    answer: (nextStatus, nextBody) => {
      status = nextStatus
      body = nextBody
    }
  }
}

interface Answer { statusCode: number, headers: Record<string, unknown>, json: () => { [key: string]: unknown } }

/** A REST error is exactly {error, message, code} with the expected status and code; returns the message. */
export function assertError (t: Test, res: Answer, status: number, code: string): string {
  t.equal(res.statusCode, status, `status ${status}`)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json()
  t.same(Object.keys(body).sort(), ['code', 'error', 'message'], 'exactly error, message and code')
  t.equal(body.code, code, `code ${code}`)
  t.type(body.message, 'string')
  return String(body.message)
}
