import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { jwtIdentity } from '../../src/http/jwt-identity.js'
import { createTestApp } from '../helpers/app.js'
import { assertError, bearer, jwksServer, keyPair, secretKey, sign } from '../helpers/tokens.js'

const rsa = await keyPair('RS256')
const ec = await keyPair('ES256')

t.test('tokens are verified against the identity provider\'s key set', async (t) => {
  const jwks = await jwksServer(t, [
    { publicKey: rsa.publicKey, kid: 'rsa-1', alg: 'RS256' },
    { publicKey: ec.publicKey, kid: 'ec-1', alg: 'ES256' }
  ])
  const { app } = await createTestApp(t, { env: { AUTH_JWKS_URL: jwks.url, AUTH_JWT_ISSUER: 'https://id.example.com/' } })
  const create = async (token: string) =>
    await app.inject({ method: 'POST', url: '/rooms', headers: bearer(token), payload: { name: 'JWKS room' } })
  const claims = { iss: 'https://id.example.com/' }

  const rs = await create(await sign(rsa.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-1', claims }))
  t.equal(rs.statusCode, 201)
  t.equal(rs.json().hostId, 'alice')
  const es = await create(await sign(ec.privateKey, 'bob', { alg: 'ES256', kid: 'ec-1', claims }))
  t.equal(es.statusCode, 201)
  t.equal(es.json().hostId, 'bob')
  t.equal(jwks.requests(), 1, 'the key set is downloaded once and cached')

  t.test('a kid the key set does not hold is refused', async (t) => {
    const stranger = await keyPair('RS256')
    const res = await create(await sign(stranger.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-2', claims }))
    t.match(assertError(t, res, 401, 'UNAUTHORIZED'), /no signing key/)
  })

  t.test('a token signed by another key under a known kid has an invalid signature', async (t) => {
    const stranger = await keyPair('RS256')
    const res = await create(await sign(stranger.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-1', claims }))
    t.equal(assertError(t, res, 401, 'UNAUTHORIZED'), 'token signature invalid')
  })

  t.test('HS256 keyed with a public key, and unsecured tokens, are refused before any key lookup', async (t) => {
    const before = jwks.requests()
    const confused = await sign(secretKey(rsa.pem), 'mallory', { alg: 'HS256', kid: 'rsa-1', claims })
    t.equal(assertError(t, await create(confused), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
    t.equal(jwks.requests(), before, 'no download for a refused algorithm')
  })

  t.test('the issuer is still checked', async (t) => {
    const res = await create(await sign(rsa.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-1', claims: { iss: 'https://evil.example.com/' } }))
    t.equal(assertError(t, res, 401, 'UNAUTHORIZED'), 'token issuer not accepted')
  })
})

t.test('an unreachable or broken key set answers 503, not 401: the token may be fine', async (t) => {
  const jwks = await jwksServer(t, [{ publicKey: rsa.publicKey, kid: 'rsa-1', alg: 'RS256' }])
  const token = await sign(rsa.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-1' })

  jwks.answer(500)
  const failing = await jwtIdentity(loadConfig({ AUTH_JWKS_URL: jwks.url }).auth)
  await t.rejects(failing.verifyToken(token), { code: 'SERVICE_UNAVAILABLE', message: /signing keys could not be fetched/ })

  jwks.answer(200, { keys: 'not a key set' })
  await t.rejects(failing.verifyToken(token), { code: 'SERVICE_UNAVAILABLE' }, 'an answer that is not a key set')
  jwks.answer(200, ['not', 'an', 'object'])
  await t.rejects(failing.verifyToken(token), { code: 'SERVICE_UNAVAILABLE' }, 'an answer that is not even an object')

  jwks.answer(200, { keys: [] })
  const res = await failing.verifyToken(token).catch((e: unknown) => e)
  t.match(res, { code: 'UNAUTHORIZED' }, 'an empty key set holds no key for the token: that is the token\'s problem')

  // A port that was just free on loopback: nothing listens there.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => { resolve() }))
  const { app } = await createTestApp(t, { env: { AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` } })
  const down = await app.inject({ method: 'GET', url: '/rooms', headers: bearer(token) })
  assertError(t, down, 503, 'SERVICE_UNAVAILABLE')
  t.notMatch(down.body, /ECONNREFUSED|127\.0\.0\.1/, 'no network details in the answer')
})

t.test('a slow key set times out with 503', async (t) => {
  const server = createServer(() => { /* never answers */ })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })
  const { port } = server.address() as AddressInfo
  const identity = await jwtIdentity(loadConfig({ AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks` }).auth, { jwksTimeoutMs: 200 })
  const token = await sign(rsa.privateKey, 'alice', { alg: 'RS256', kid: 'rsa-1' })
  await t.rejects(identity.verifyToken(token), { code: 'SERVICE_UNAVAILABLE' })
})
