import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError, INT_VARIABLES, isJwtMode, loadConfig } from '../src/config.js'

const SECRET = 'a-secret-of-at-least-thirty-two-bytes!!'

/** The message loadConfig throws for `env`, or fails the test when it does not throw. */
function refusal (env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`)
}

/** Every variable name src/config.ts reads: text('X'), env.X and the INT_VARIABLES table. */
function variablesReadByConfig (): string[] {
  const source = readFileSync(new URL('../src/config.ts', import.meta.url), 'utf8')
  const names = new Set<string>(Object.values(INT_VARIABLES).map((rule) => rule.name))
  for (const match of source.matchAll(/\btext\('([A-Z][A-Z0-9_]*)'\)|\benv\.([A-Z][A-Z0-9_]*)|\benv\['([A-Z][A-Z0-9_]*)'\]/g)) {
    names.add((match[1] ?? match[2] ?? match[3]) as string)
  }
  return [...names].sort()
}

t.test('with nothing set every variable has its documented default', async (t) => {
  const config = loadConfig({})
  t.match(config, {
    port: 3000,
    host: '0.0.0.0',
    databaseUrl: undefined,
    dataDir: './data',
    databasePoolMax: 10,
    logLevel: 'info',
    nodeEnv: 'development',
    disconnectGraceMs: 10_000,
    emptyRoomTtlMs: 300_000,
    maxRoomParticipants: 100,
    maxRoomsPerHost: 10,
    heartbeatMs: 30_000,
    playbackFlushMs: 1000,
    shutdownTimeoutMs: 10_000,
    bodyLimitBytes: 16_384
  })
  for (const [key, rule] of Object.entries(INT_VARIABLES)) {
    t.equal(config[key as keyof typeof config], rule.fallback, `${rule.name} defaults to ${rule.fallback}`)
  }
  t.notOk(isJwtMode(config.auth), 'development identity when no key is set')
})

t.test('blank values count as unset', async (t) => {
  const config = loadConfig({ PORT: '', HOST: '  ', DATABASE_URL: '', LOG_LEVEL: ' ', AUTH_JWT_SECRET: '' })
  t.equal(config.port, 3000)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.databaseUrl, undefined)
  t.equal(config.logLevel, 'info')
  t.notOk(isJwtMode(config.auth))
})

t.test('values are parsed and typed', async (t) => {
  const config = loadConfig({
    PORT: ' 8080 ',
    HOST: '127.0.0.1',
    DATABASE_URL: 'postgresql://app:pw@db:5432/watch',
    DATA_DIR: '/var/lib/watch-party',
    LOG_LEVEL: 'debug',
    NODE_ENV: 'test',
    DISCONNECT_GRACE_MS: '0',
    MAX_ROOM_PARTICIPANTS: '2'
  })
  t.match(config, {
    port: 8080,
    host: '127.0.0.1',
    databaseUrl: 'postgresql://app:pw@db:5432/watch',
    dataDir: '/var/lib/watch-party',
    logLevel: 'debug',
    nodeEnv: 'test',
    disconnectGraceMs: 0,
    maxRoomParticipants: 2
  })
  t.equal(loadConfig({ DATABASE_URL: 'postgres://localhost/x' }).databaseUrl, 'postgres://localhost/x')
})

t.test('every numeric variable accepts its bounds and refuses anything else, naming itself', async (t) => {
  for (const rule of Object.values(INT_VARIABLES)) {
    t.equal(loadConfig({ [rule.name]: String(rule.min) })[keyOf(rule.name)], rule.min, `${rule.name}=${rule.min} is accepted`)
    t.equal(loadConfig({ [rule.name]: String(rule.max) })[keyOf(rule.name)], rule.max, `${rule.name}=${rule.max} is accepted`)
    const bad = ['abc', '-1', '1.5', '1e3', '0x10', String(rule.max + 1), ...(rule.min > 0 ? [String(rule.min - 1)] : [])]
    for (const value of bad) {
      const message = refusal({ [rule.name]: value })
      t.match(message, `${rule.name}=`, `${rule.name}=${value} is refused with a message naming it`)
      t.match(message, `${rule.min}..${rule.max}`, 'and saying what is allowed')
    }
  }
})

t.test('a DATABASE_URL that is not a Postgres URL is refused', async (t) => {
  for (const url of ['mysql://localhost/db', 'localhost:5432', 'file:./data']) {
    t.match(refusal({ DATABASE_URL: url }), /DATABASE_URL/)
  }
})

t.test('an unknown LOG_LEVEL is refused with the allowed levels', async (t) => {
  const message = refusal({ LOG_LEVEL: 'verbose' })
  t.match(message, /LOG_LEVEL="verbose"/)
  t.match(message, /fatal, error, warn, info, debug, trace, silent/)
})

t.test('JWT keys are checked', async (t) => {
  t.ok(isJwtMode(loadConfig({ AUTH_JWT_SECRET: SECRET }).auth), 'a secret switches to JWT mode')
  t.match(refusal({ AUTH_JWT_SECRET: 'too-short' }), /AUTH_JWT_SECRET must be at least 32 bytes/)
  t.match(refusal({ AUTH_JWT_PUBLIC_KEY: 'not a pem' }), /AUTH_JWT_PUBLIC_KEY/)
  t.match(refusal({ AUTH_JWKS_URL: 'ftp://keys.example.com' }), /AUTH_JWKS_URL/)
  t.match(refusal({ AUTH_JWT_SECRET: SECRET, AUTH_JWKS_URL: 'https://idp.example.com/jwks.json' }), /only one of/)
})

t.test('NODE_ENV=production without a key is refused; with one it starts', async (t) => {
  const message = refusal({ NODE_ENV: 'production' })
  t.match(message, /NODE_ENV=production/)
  t.match(message, /AUTH_JWT_SECRET/)
  const config = loadConfig({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET })
  t.equal(config.nodeEnv, 'production')
  t.ok(isJwtMode(config.auth))
})

t.test('NODE_ENV accepts development, test and production only; unset means development', async (t) => {
  t.equal(loadConfig({}).nodeEnv, 'development')
  t.equal(loadConfig({ NODE_ENV: '' }).nodeEnv, 'development', 'blank counts as unset')
  for (const value of ['development', 'test', ' test ']) t.equal(loadConfig({ NODE_ENV: value }).nodeEnv, value.trim(), value)
  // A typo must not fall back to development identity, which trusts x-user-id as sent.
  for (const value of ['prod', 'Production', 'PRODUCTION', 'staging', 'dev', 'production1']) {
    const message = refusal({ NODE_ENV: value, AUTH_JWT_SECRET: SECRET })
    t.match(message, `NODE_ENV=${JSON.stringify(value)} must be one of development, test, production`, value)
    t.match(message, /unset means development/)
  }
})

t.test('every problem is reported at once', async (t) => {
  const message = refusal({ PORT: 'eighty', HEARTBEAT_MS: '5', LOG_LEVEL: 'loud' })
  t.match(message, /PORT=/)
  t.match(message, /HEARTBEAT_MS=/)
  t.match(message, /LOG_LEVEL=/)
  t.equal(refusalProblems({ PORT: 'eighty', HEARTBEAT_MS: '5', LOG_LEVEL: 'loud' }), 3)
})

t.test('loadConfig reads process.env by default', async (t) => {
  const saved = process.env.MAX_ROOMS_PER_HOST
  process.env.MAX_ROOMS_PER_HOST = '7'
  t.teardown(() => {
    if (saved === undefined) delete process.env.MAX_ROOMS_PER_HOST
    else process.env.MAX_ROOMS_PER_HOST = saved
  })
  t.equal(loadConfig().maxRoomsPerHost, 7)
})

t.test('docs/configuration.md documents every variable config.ts reads', async (t) => {
  const readme = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
  const names = variablesReadByConfig()
  t.ok(names.includes('DATABASE_URL') && names.includes('PORT') && names.includes('AUTH_JWT_SECRET'), 'the names were found in config.ts')
  for (const name of names) {
    t.match(readme, new RegExp(`^\\|\\s*\`${name}\`\\s*\\|`, 'm'), `${name} has a row in the configuration table`)
  }
  for (const rule of Object.values(INT_VARIABLES)) {
    const row = new RegExp(`^\\|\\s*\`${rule.name}\`\\s*\\|[^|\\n]*\`${rule.fallback}\`[^|\\n]*\\|`, 'm')
    t.match(readme, row, `docs/configuration.md gives ${rule.name}'s default, ${rule.fallback}`)
  }
})

function refusalProblems (env: Record<string, string>): number {
  try {
    loadConfig(env)
    return 0
  } catch (err) {
    return err instanceof ConfigError ? err.problems.length : -1
  }
}

function keyOf (name: string): keyof typeof INT_VARIABLES {
  const entry = Object.entries(INT_VARIABLES).find(([, rule]) => rule.name === name)
  if (entry === undefined) throw new Error(`no rule for ${name}`)
  return entry[0] as keyof typeof INT_VARIABLES
}

t.test('SOCKET_WRITES is direct by default, stream on request, and anything else is refused by name', async (t) => {
  t.equal(loadConfig({}).socketWrites, 'direct')
  t.equal(loadConfig({ SOCKET_WRITES: 'stream' }).socketWrites, 'stream')
  t.match(refusal({ SOCKET_WRITES: 'fast' }), /SOCKET_WRITES="fast" must be one of direct, stream/)
})
