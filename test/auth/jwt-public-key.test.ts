import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { AppError } from '../../src/errors.js'
import { jwtIdentity } from '../../src/http/jwt-identity.js'
import { createTestApp } from '../helpers/app.js'
import { assertError, bearer, keyPair, nowSeconds, secretKey, sign } from '../helpers/tokens.js'

const rsa = await keyPair('RS256')
const ec = await keyPair('ES256')

t.test('RS256: a token signed with the private key acts as its sub', async (t) => {
  const { app } = await createTestApp(t, { env: { AUTH_JWT_PUBLIC_KEY: rsa.pem } })
  const create = async (token: string) =>
    await app.inject({ method: 'POST', url: '/rooms', headers: bearer(token), payload: { name: 'RS room' } })

  const res = await create(await sign(rsa.privateKey, 'alice', { alg: 'RS256' }))
  t.equal(res.statusCode, 201)
  t.equal(res.json().hostId, 'alice')

  t.test('HS256 signed with the public key text as the secret is refused (no algorithm confusion)', async (t) => {
    const confused = await sign(secretKey(rsa.pem), 'mallory', { alg: 'HS256' })
    t.equal(assertError(t, await create(confused), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
    const confusedTrimmed = await sign(secretKey(rsa.pem.trim()), 'mallory', { alg: 'HS256' })
    t.equal(assertError(t, await create(confusedTrimmed), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  })

  t.test('a token signed by another RSA key has an invalid signature', async (t) => {
    const other = await keyPair('RS256')
    const forged = await sign(other.privateKey, 'alice', { alg: 'RS256' })
    t.equal(assertError(t, await create(forged), 401, 'UNAUTHORIZED'), 'token signature invalid')
  })

  t.test('an ES256 token is refused by an RS256 server', async (t) => {
    const es = await sign(ec.privateKey, 'alice', { alg: 'ES256' })
    t.equal(assertError(t, await create(es), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  })

  t.test('PS256 with the same RSA key is refused: the algorithm is pinned, not the key family', async (t) => {
    const { privateKey } = await import('jose').then(async ({ importPKCS8, exportPKCS8 }) =>
      ({ privateKey: await importPKCS8(await exportPKCS8(rsa.privateKey), 'PS256') }))
    const ps = await sign(privateKey, 'alice', { alg: 'PS256' })
    t.equal(assertError(t, await create(ps), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  })

  t.test('exp and nbf are honoured as with HS256', async (t) => {
    const expired = await sign(rsa.privateKey, 'alice', { alg: 'RS256', claims: { exp: nowSeconds() - 31 } })
    t.equal(assertError(t, await create(expired), 401, 'UNAUTHORIZED'), 'token expired')
    const early = await sign(rsa.privateKey, 'alice', { alg: 'RS256', claims: { nbf: nowSeconds() + 60 } })
    t.match(assertError(t, await create(early), 401, 'UNAUTHORIZED'), /not yet valid/)
  })
})

t.test('ES256: the algorithm follows the EC P-256 key', async (t) => {
  const { app } = await createTestApp(t, { env: { AUTH_JWT_PUBLIC_KEY: ec.pem } })
  const create = async (token: string) =>
    await app.inject({ method: 'POST', url: '/rooms', headers: bearer(token), payload: { name: 'EC room' } })

  const res = await create(await sign(ec.privateKey, 'bob', { alg: 'ES256' }))
  t.equal(res.statusCode, 201)
  t.equal(res.json().hostId, 'bob')

  const rs = await sign(rsa.privateKey, 'bob', { alg: 'RS256' })
  t.equal(assertError(t, await create(rs), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  const confused = await sign(secretKey(ec.pem), 'mallory', { alg: 'HS256' })
  t.equal(assertError(t, await create(confused), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  const other = await keyPair('ES256')
  t.equal(assertError(t, await create(await sign(other.privateKey, 'bob', { alg: 'ES256' })), 401, 'UNAUTHORIZED'), 'token signature invalid')
})

t.test('a PEM passed with escaped newlines (one-line env files) works', async (t) => {
  const config = loadConfig({ AUTH_JWT_PUBLIC_KEY: rsa.pem.trim().replace(/\n/g, '\\n') })
  const identity = await jwtIdentity(config.auth)
  t.equal((await identity.verifyToken(await sign(rsa.privateKey, 'carol', { alg: 'RS256' }))).userId, 'carol')
})

t.test('verifyToken returns the expiry as epoch ms, and nothing when the token has no exp', async (t) => {
  const identity = await jwtIdentity(loadConfig({ AUTH_JWT_PUBLIC_KEY: rsa.pem }).auth)
  const exp = nowSeconds() + 120
  t.same(await identity.verifyToken(await sign(rsa.privateKey, 'carol', { alg: 'RS256', claims: { exp } })), { userId: 'carol', expiresAt: exp * 1000 })
  t.same(await identity.verifyToken(await sign(rsa.privateKey, 'carol', { alg: 'RS256', claims: { exp: undefined } })), { userId: 'carol' })
})

t.test('resolve reads the bearer header first, then ?token= (browsers\' WebSockets)', async (t) => {
  const identity = await jwtIdentity(loadConfig({ AUTH_JWT_PUBLIC_KEY: rsa.pem }).auth)
  const alice = await sign(rsa.privateKey, 'alice', { alg: 'RS256' })
  const bob = await sign(rsa.privateKey, 'bob', { alg: 'RS256' })
  t.equal((await identity.resolve({ headers: {}, query: { token: alice } })).userId, 'alice')
  t.equal((await identity.resolve({ headers: bearer(bob), query: { token: alice } })).userId, 'bob')
  t.equal((await identity.resolve({ headers: { 'x-user-id': 'mallory' }, query: { token: alice, userId: 'mallory' } })).userId, 'alice')
  await t.rejects(identity.resolve({ headers: { 'x-user-id': 'mallory' }, query: { userId: 'mallory' } }), { code: 'UNAUTHORIZED' })
  await t.rejects(identity.resolve({ headers: {}, query: { token: [alice, bob] } }), { code: 'UNAUTHORIZED', message: /one token/ })
  await t.rejects(identity.verifyToken(''), { code: 'UNAUTHORIZED' })
  const err = await identity.verifyToken('not-a-token').catch((e: unknown) => e)
  t.type(err, AppError)
})
