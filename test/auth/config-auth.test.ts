import { generateKeyPairSync } from 'node:crypto'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig, publicKeyAlgorithm } from '../../src/config.js'
import { createIdentityResolver } from '../../src/http/identity.js'
import { SECRET } from '../helpers/tokens.js'

/** The problems loadConfig reports for `env`; fails the test when it does not throw. */
function problems (t: Test, env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    t.type(err, ConfigError)
    return (err as ConfigError).problems
  }
  t.fail(`expected ${JSON.stringify(env)} to be refused`)
  return []
}

const pem = (type: 'rsa' | 'ec' | 'ed25519', options: Record<string, unknown> = {}): string =>
  generateKeyPairSync(type as 'rsa', { modulusLength: 2048, ...options } as { modulusLength: number }).publicKey
    .export({ type: 'spki', format: 'pem' }).toString()

t.test('ALLOWED_ORIGINS', async (t) => {
  t.test('unset or blank allows every origin', async (t) => {
    t.equal(loadConfig({}).allowedOrigins, undefined)
    t.equal(loadConfig({ ALLOWED_ORIGINS: '  ' }).allowedOrigins, undefined)
  })

  t.test('a comma-separated list of exact origins, trimmed and without duplicates', async (t) => {
    const config = loadConfig({ ALLOWED_ORIGINS: 'https://watch.example.com, http://localhost:5173,https://watch.example.com,' })
    t.same(config.allowedOrigins, ['https://watch.example.com', 'http://localhost:5173'])
    t.same(loadConfig({ ALLOWED_ORIGINS: 'capacitor://localhost' }).allowedOrigins, ['capacitor://localhost'], 'app schemes too')
  })

  t.test('anything that is not an origin as browsers send it is refused, naming the entry', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['https://example.com/', /not an origin/],
      ['https://example.com/app', /not an origin/],
      ['https://example.com?x=1', /not an origin/],
      ['https://user@example.com', /not an origin/],
      ['example.com', /not an origin/],
      ['https://Example.com', /exactly as browsers send it: https:\/\/example\.com/],
      ['https://example.com:443', /exactly as browsers send it: https:\/\/example\.com$/],
      ['http://[::1', /not a valid URL origin|not an origin/],
      ['*', /unset ALLOWED_ORIGINS to allow every origin/],
      ['null', /not allowed/]
    ]
    for (const [value, message] of cases) {
      const found = problems(t, { ALLOWED_ORIGINS: `https://ok.example.com,${value}` })
      t.equal(found.length, 1, value)
      t.match(found[0], /^ALLOWED_ORIGINS entry /)
      t.match(found[0], JSON.stringify(value))
      t.match(found[0], message)
    }
    t.match(problems(t, { ALLOWED_ORIGINS: ' , ,' }), [/ALLOWED_ORIGINS lists no origin/])
  })
})

t.test('REST_RATE_LIMIT_PER_MINUTE', async (t) => {
  t.equal(loadConfig({}).restRateLimitPerMinute, 300, 'defaults to 300')
  t.equal(loadConfig({ REST_RATE_LIMIT_PER_MINUTE: '5' }).restRateLimitPerMinute, 5)
  t.match(problems(t, { REST_RATE_LIMIT_PER_MINUTE: '0' }), [/REST_RATE_LIMIT_PER_MINUTE=0 is out of range \(allowed 1\.\.1000000\)/])
  t.match(problems(t, { REST_RATE_LIMIT_PER_MINUTE: 'lots' }), [/REST_RATE_LIMIT_PER_MINUTE="lots" is not a whole number/])
})

t.test('AUTH_JWT_PUBLIC_KEY must be an RSA (2048+) or EC P-256 public key', async (t) => {
  t.equal(publicKeyAlgorithm(pem('rsa')), 'RS256')
  t.equal(publicKeyAlgorithm(pem('ec', { namedCurve: 'P-256' })), 'ES256')
  t.same(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('ec', { namedCurve: 'P-256' }) }).auth.jwtSecret, undefined)

  t.match(problems(t, { AUTH_JWT_PUBLIC_KEY: pem('rsa', { modulusLength: 1024 }) }), [/AUTH_JWT_PUBLIC_KEY is a 1024-bit RSA key: RS256 needs 2048 bits/])
  t.match(problems(t, { AUTH_JWT_PUBLIC_KEY: pem('ec', { namedCurve: 'P-384' }) }), [/AUTH_JWT_PUBLIC_KEY is an EC key on secp384r1: only P-256/])
  t.match(problems(t, { AUTH_JWT_PUBLIC_KEY: pem('ed25519') }), [/AUTH_JWT_PUBLIC_KEY is a key of type ed25519: only RSA \(RS256\) and EC P-256/])
  t.match(problems(t, { AUTH_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----' }), [/AUTH_JWT_PUBLIC_KEY is not a readable PEM public key/])
  t.match(problems(t, { AUTH_JWT_PUBLIC_KEY: 'ssh-rsa AAAA' }), [/must be a PEM public key/])
})

t.test('the identity mode follows the configuration', async (t) => {
  t.equal((await createIdentityResolver(loadConfig({}))).mode, 'development')
  t.equal((await createIdentityResolver(loadConfig({ AUTH_JWT_SECRET: SECRET }))).mode, 'jwt')
  t.equal((await createIdentityResolver(loadConfig({ AUTH_JWT_PUBLIC_KEY: pem('rsa') }))).mode, 'jwt')
  t.equal((await createIdentityResolver(loadConfig({ AUTH_JWKS_URL: 'https://id.example.com/.well-known/jwks.json' }))).mode, 'jwt')
  t.match(problems(t, { NODE_ENV: 'production' }), [/NODE_ENV=production needs AUTH_JWT_SECRET/])
  await t.rejects(createIdentityResolver({ nodeEnv: 'production', auth: loadConfig({}).auth }), /NODE_ENV=production needs/)
  t.equal((await createIdentityResolver(loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET }))).mode, 'jwt')
})

t.test('development mode still takes x-user-id, and ?userId= on the WebSocket', async (t) => {
  const identity = await createIdentityResolver(loadConfig({}))
  t.same(await identity.resolve({ headers: { 'x-user-id': 'alice' }, query: {} }), { userId: 'alice' })
  t.same(await identity.resolve({ headers: {}, query: { userId: 'bob' } }), { userId: 'bob' })
  await t.rejects(identity.resolve({ headers: {}, query: {} }), { code: 'UNAUTHORIZED' })
  await t.rejects(identity.verifyToken('x'), { code: 'VALIDATION_FAILED' })
})
