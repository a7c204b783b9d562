import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { keyPair, sign, signHs256, nowSeconds, bearer, unsecured, assertError, SECRET, secretKey } from '../helpers/tokens.js'

const ISSUER = 'https://id.example.com/'
const AUDIENCE = 'watch-party'
const { app } = await createTestApp(t, {
  env: { AUTH_JWT_SECRET: SECRET, AUTH_JWT_ISSUER: ISSUER, AUTH_JWT_AUDIENCE: AUDIENCE }
})

/** A token this server accepts, for `sub`, with extra or overriding claims. */
const token = async (sub: string | undefined, claims: Record<string, unknown> = {}): Promise<string> =>
  await signHs256(sub, { iss: ISSUER, aud: AUDIENCE, ...claims })

const createRoom = async (headers: Record<string, string>, url = '/rooms') =>
  await app.inject({ method: 'POST', url, headers, payload: { name: 'Friday movie' } })

t.test('a valid HS256 token acts as its sub', async (t) => {
  const res = await createRoom(bearer(await token('alice')))
  t.equal(res.statusCode, 201)
  t.equal(res.json().hostId, 'alice')
})

t.test('the Bearer scheme is case-insensitive', async (t) => {
  const res = await createRoom({ authorization: `bearer ${await token('alice')}` })
  t.equal(res.statusCode, 201)
})

t.test('a forged x-user-id is ignored in JWT mode', async (t) => {
  const res = await createRoom({ ...bearer(await token('alice')), 'x-user-id': 'mallory' })
  t.equal(res.statusCode, 201)
  t.equal(res.json().hostId, 'alice', 'the token decides, not the header')

  const alone = await createRoom({ 'x-user-id': 'mallory' })
  t.match(assertError(t, alone, 401, 'UNAUTHORIZED'), /missing token/)
})

t.test('?userId= and ?token= are not REST credentials', async (t) => {
  assertError(t, await createRoom({}, '/rooms?userId=mallory'), 401, 'UNAUTHORIZED')
  const viaQuery = await createRoom({}, `/rooms?token=${await token('alice')}`)
  t.match(assertError(t, viaQuery, 401, 'UNAUTHORIZED'), /missing token/, 'query tokens are for the WebSocket only')
})

t.test('a call without a token gets 401', async (t) => {
  t.match(assertError(t, await app.inject({ method: 'GET', url: '/rooms' }), 401, 'UNAUTHORIZED'), /missing token/)
})

t.test('an Authorization header that is not Bearer gets 401', async (t) => {
  for (const authorization of ['Basic YWxpY2U6cGFzcw==', 'Bearer', 'Bearer a b', await token('alice')]) {
    const res = await createRoom({ authorization })
    t.match(assertError(t, res, 401, 'UNAUTHORIZED'), /Bearer <token>/, authorization.slice(0, 20))
  }
})

t.test('a token that is not a JWT is malformed', async (t) => {
  for (const junk of ['abc', 'a.b.c', '....', `${'x'.repeat(20)}.${'y'.repeat(20)}.`]) {
    t.match(assertError(t, await createRoom(bearer(junk)), 401, 'UNAUTHORIZED'), /token/, junk)
  }
})

t.test('an expired token is refused', async (t) => {
  const expired = await token('alice', { exp: nowSeconds() - 60 })
  t.equal(assertError(t, await createRoom(bearer(expired)), 401, 'UNAUTHORIZED'), 'token expired')
})

t.test('a token expired within the 30 s leeway is still accepted', async (t) => {
  const justExpired = await token('alice', { exp: nowSeconds() - 10 })
  t.equal((await createRoom(bearer(justExpired))).statusCode, 201)
})

t.test('a token that is not yet valid is refused', async (t) => {
  const early = await token('alice', { nbf: nowSeconds() + 120 })
  t.match(assertError(t, await createRoom(bearer(early)), 401, 'UNAUTHORIZED'), /not yet valid/)
})

t.test('a token valid in less than the leeway is accepted', async (t) => {
  const almost = await token('alice', { nbf: nowSeconds() + 10 })
  t.equal((await createRoom(bearer(almost))).statusCode, 201)
})

t.test('a wrong or missing issuer is refused', async (t) => {
  const wrong = await token('alice', { iss: 'https://evil.example.com/' })
  t.equal(assertError(t, await createRoom(bearer(wrong)), 401, 'UNAUTHORIZED'), 'token issuer not accepted')
  const missing = await token('alice', { iss: undefined })
  t.equal(assertError(t, await createRoom(bearer(missing)), 401, 'UNAUTHORIZED'), 'token issuer not accepted')
})

t.test('a wrong or missing audience is refused', async (t) => {
  const wrong = await token('alice', { aud: 'another-app' })
  t.equal(assertError(t, await createRoom(bearer(wrong)), 401, 'UNAUTHORIZED'), 'token audience not accepted')
  const missing = await token('alice', { aud: undefined })
  t.equal(assertError(t, await createRoom(bearer(missing)), 401, 'UNAUTHORIZED'), 'token audience not accepted')
  const among = await token('alice', { aud: ['another-app', AUDIENCE] })
  t.equal((await createRoom(bearer(among))).statusCode, 201, 'an audience list that contains ours is accepted')
})

t.test('a token signed with another secret has an invalid signature', async (t) => {
  const forged = await signHs256('alice', { iss: ISSUER, aud: AUDIENCE }, 'another-secret-that-is-also-32-bytes-long')
  t.equal(assertError(t, await createRoom(bearer(forged)), 401, 'UNAUTHORIZED'), 'token signature invalid')
})

t.test('a token whose payload was edited has an invalid signature', async (t) => {
  const [header, , signature] = (await token('alice')).split('.')
  const payload = Buffer.from(JSON.stringify({ sub: 'mallory', iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 300 })).toString('base64url')
  const res = await createRoom(bearer(`${header}.${payload}.${signature}`))
  t.equal(assertError(t, res, 401, 'UNAUTHORIZED'), 'token signature invalid')
})

t.test('an unsecured token (alg none) is refused', async (t) => {
  const none = unsecured({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 300 })
  t.match(assertError(t, await createRoom(bearer(none)), 401, 'UNAUTHORIZED'), /token/)
})

t.test('an RS256 or HS512 token is refused by an HS256 server', async (t) => {
  const { privateKey } = await keyPair('RS256')
  const rs = await sign(privateKey, 'alice', { alg: 'RS256', claims: { iss: ISSUER, aud: AUDIENCE } })
  t.equal(assertError(t, await createRoom(bearer(rs)), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
  const hs512 = await sign(secretKey(), 'alice', { alg: 'HS512', claims: { iss: ISSUER, aud: AUDIENCE } })
  t.equal(assertError(t, await createRoom(bearer(hs512)), 401, 'UNAUTHORIZED'), 'token algorithm not accepted')
})

t.test('a sub outside the user-id grammar is refused', async (t) => {
  for (const sub of ['al ice', 'x'.repeat(129), 'alice/bob', 'élise', '']) {
    const res = await createRoom(bearer(await token(sub)))
    t.match(assertError(t, res, 401, 'UNAUTHORIZED'), /not a valid user id/, JSON.stringify(sub).slice(0, 20))
  }
  t.match(assertError(t, await createRoom(bearer(await token(undefined))), 401, 'UNAUTHORIZED'), /no sub claim/)
  // jose itself refuses a sub that is not a string.
  assertError(t, await createRoom(bearer(await token(undefined, { sub: 42 }))), 401, 'UNAUTHORIZED')
  t.equal((await createRoom(bearer(await token('x'.repeat(128))))).statusCode, 201, '128 characters is the maximum')
  t.equal((await createRoom(bearer(await token('auth0:abc@example.com')))).statusCode, 201)
})

t.test('a very long token is refused unread', async (t) => {
  const res = await createRoom(bearer(`${'a'.repeat(10_000)}.${'b'.repeat(10_000)}.c`))
  t.match(assertError(t, res, 401, 'UNAUTHORIZED'), /longer than/)
})

t.test('error messages never carry key material or stacks', async (t) => {
  const res = await createRoom(bearer(await signHs256('alice', {}, 'another-secret-that-is-also-32-bytes-long')))
  const text = res.body
  t.notMatch(text, SECRET)
  t.notMatch(text, /at .*\.(ts|js):\d+/)
})

t.test('without issuer and audience configured, neither is checked', async (t) => {
  const { app: plain } = await createTestApp(t, { env: { AUTH_JWT_SECRET: SECRET } })
  const res = await plain.inject({
    method: 'POST', url: '/rooms', headers: bearer(await signHs256('bob', { iss: 'anyone', aud: 'anything' })), payload: { name: 'x' }
  })
  t.equal(res.statusCode, 201)
  t.equal(res.json().hostId, 'bob')
})
