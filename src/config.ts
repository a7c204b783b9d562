/**
 * Every environment variable the server reads, parsed and validated once at start.
 *
 * Contract: `loadConfig` either returns a fully typed Config or throws a ConfigError whose message names
 * every variable that is wrong and why. Nothing else in the code base reads `process.env`.
 * docs/configuration.md's table mirrors VARIABLES below.
 */

import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
/** How fan-out frames reach a TCP socket: straight to its libuv handle where Node allows it, or through Node's stream. */
export type SocketWritesMode = 'direct' | 'stream'
const SOCKET_WRITES_MODES: readonly SocketWritesMode[] = ['direct', 'stream']

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export interface Config {
  port: number
  host: string
  /** Postgres connection string; undefined means the embedded PGlite database in `dataDir`. */
  databaseUrl: string | undefined
  /** PGlite data directory, or `memory://` for a throw-away in-memory database. */
  dataDir: string
  databasePoolMax: number
  logLevel: LogLevel
  /** SOCKET_WRITES: `direct` (default) or `stream` (see src/realtime/tcp-direct-write.ts). */
  socketWrites: SocketWritesMode
  nodeEnv: NodeEnv
  disconnectGraceMs: number
  emptyRoomTtlMs: number
  maxRoomParticipants: number
  maxRoomsPerHost: number
  heartbeatMs: number
  playbackFlushMs: number
  shutdownTimeoutMs: number
  bodyLimitBytes: number
  /** REST requests one user (or, without an identity, one IP) may make per minute; /healthz, /readyz, /metrics are exempt. */
  restRateLimitPerMinute: number
  /**
   * Exact origins (scheme://host[:port]) browsers may call REST from (CORS) and open the WebSocket from.
   * Undefined means every origin is allowed (the server warns at start).
   */
  allowedOrigins: string[] | undefined
  /** Request headers a CORS preflight allows (lower case); CORS_ALLOWED_HEADERS replaces the default list. */
  corsAllowedHeaders: string[]
  /** Bearer token GET /metrics requires; undefined leaves /metrics public. */
  metricsToken: string | undefined
  /** WebSocket abuse limits (see docs/security.md, Limits). */
  wsMessagesPerSecond: number
  wsMessageBurst: number
  wsFloodLimit: number
  maxConnectionsPerUser: number
  maxRoomsPerConnection: number
  slowConsumerBytes: number
  /** Per-user connection attempts and membership writes, per-address attempts and connections (docs/security.md, Limits). */
  wsConnectsPerUserPerMinute: number
  wsConnectsPerAddressPerMinute: number
  wsMembershipWritesPerSecond: number
  wsMembershipWriteBurst: number
  maxConnectionsPerAddress: number
  /** An HTTP request (a WebSocket upgrade too) must be received, and an upgrade authenticated, within this. */
  wsHandshakeTimeoutMs: number
  /** The deprecated 1-on-1 channels: relayed as always, only between connections that used them, or refused. */
  legacyRelayMode: LegacyRelayMode
  /** Stream events kept per open room for catch-up (at least this many; chat lines of the chat history too). */
  roomHistorySize: number
  /** Chat events in room_joined / room_created `chat`. */
  chatHistorySize: number
  /** The most a catch-up replays; a larger gap answers `recovered: false`. */
  replayMaxBytes: number
  /** How long a request that must be stored may wait behind a room's other writes before it answers SERVICE_UNAVAILABLE. */
  storeWaitMs: number
  /** URL schemes host_sync and the legacy relay accept for videoUrl (lower case). */
  allowedVideoSchemes: string[]
  /** Without cluster mode, what a second process on the same PostgreSQL database does (docs/operations.md). */
  singleProcessLock: SingleProcessLockMode
  /** Cluster mode (several nodes on one database and one Redis); undefined: one process. */
  cluster: ClusterConfig | undefined
  /** The lease of a room's owner (cluster mode; also in `cluster`). */
  roomLeaseMs: number
  /** Days `room_events` rows are kept; 0 keeps them for ever. */
  auditRetentionDays: number
  auth: AuthConfig
}

export interface ClusterConfig {
  redisUrl: string
  /** Namespaces every Redis key and channel of this deployment. */
  redisPrefix: string
  /** This process's name among the nodes (random at each start unless set). */
  nodeId: string
  /** How long a room's owner lease lasts unless renewed (renewed every third of it). */
  roomLeaseMs: number
}

/** `wait`: start serving once the other process stopped; `refuse`: exit 1 at once. */
export type SingleProcessLockMode = 'wait' | 'refuse'
const SINGLE_PROCESS_LOCK_MODES: readonly SingleProcessLockMode[] = ['wait', 'refuse']

/** `open`: relay to the other user as always; `strict`: only to connections that used the channel; `off`: refused. */
export type LegacyRelayMode = 'open' | 'strict' | 'off'
const LEGACY_RELAY_MODES: readonly LegacyRelayMode[] = ['open', 'strict', 'off']

/** Unset means development; anything else is refused, so a typo cannot fall back to development identity. */
export type NodeEnv = 'development' | 'test' | 'production'
const NODE_ENVS: readonly NodeEnv[] = ['development', 'test', 'production']

/** What browser SDKs send besides the credentials: W3C trace context and request ids. */
export const DEFAULT_CORS_ALLOWED_HEADERS: readonly string[] = ['authorization', 'content-type', 'x-user-id', 'traceparent', 'tracestate', 'x-request-id']
/** A bearer token shorter than this is guessable; a random one is much longer anyway. */
export const METRICS_TOKEN_MIN_LENGTH = 16

export interface AuthConfig {
  jwtSecret: string | undefined
  jwtPublicKey: string | undefined
  jwksUrl: string | undefined
  issuer: string | undefined
  audience: string | undefined
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

interface IntRule { name: string, fallback: number, min: number, max: number }

/** Documented defaults; the table in docs/configuration.md is written from these. */
export const INT_VARIABLES = {
  port: { name: 'PORT', fallback: 3000, min: 0, max: 65535 },
  databasePoolMax: { name: 'DATABASE_POOL_MAX', fallback: 10, min: 2, max: 1000 },
  disconnectGraceMs: { name: 'DISCONNECT_GRACE_MS', fallback: 10_000, min: 0, max: 86_400_000 },
  emptyRoomTtlMs: { name: 'EMPTY_ROOM_TTL_MS', fallback: 300_000, min: 0, max: 2_592_000_000 },
  maxRoomParticipants: { name: 'MAX_ROOM_PARTICIPANTS', fallback: 100, min: 1, max: 100_000 },
  maxRoomsPerHost: { name: 'MAX_ROOMS_PER_HOST', fallback: 10, min: 1, max: 100_000 },
  heartbeatMs: { name: 'HEARTBEAT_MS', fallback: 30_000, min: 100, max: 3_600_000 },
  playbackFlushMs: { name: 'PLAYBACK_FLUSH_MS', fallback: 1000, min: 10, max: 1000 },
  shutdownTimeoutMs: { name: 'SHUTDOWN_TIMEOUT_MS', fallback: 10_000, min: 100, max: 600_000 },
  bodyLimitBytes: { name: 'BODY_LIMIT_BYTES', fallback: 16_384, min: 256, max: 10_485_760 },
  restRateLimitPerMinute: { name: 'REST_RATE_LIMIT_PER_MINUTE', fallback: 300, min: 1, max: 1_000_000 },
  wsMessagesPerSecond: { name: 'WS_MESSAGES_PER_SECOND', fallback: 20, min: 1, max: 100_000 },
  wsMessageBurst: { name: 'WS_MESSAGE_BURST', fallback: 40, min: 1, max: 100_000 },
  wsFloodLimit: { name: 'WS_FLOOD_LIMIT', fallback: 100, min: 1, max: 1_000_000 },
  maxConnectionsPerUser: { name: 'MAX_CONNECTIONS_PER_USER', fallback: 10, min: 1, max: 100_000 },
  maxRoomsPerConnection: { name: 'MAX_ROOMS_PER_CONNECTION', fallback: 10, min: 1, max: 100_000 },
  slowConsumerBytes: { name: 'SLOW_CONSUMER_BYTES', fallback: 1_048_576, min: 16_384, max: 1_073_741_824 },
  wsConnectsPerUserPerMinute: { name: 'WS_CONNECTS_PER_USER_PER_MINUTE', fallback: 60, min: 1, max: 1_000_000 },
  wsConnectsPerAddressPerMinute: { name: 'WS_CONNECTS_PER_ADDRESS_PER_MINUTE', fallback: 1000, min: 1, max: 1_000_000 },
  wsMembershipWritesPerSecond: { name: 'WS_MEMBERSHIP_WRITES_PER_SECOND', fallback: 5, min: 1, max: 100_000 },
  wsMembershipWriteBurst: { name: 'WS_MEMBERSHIP_WRITE_BURST', fallback: 20, min: 1, max: 100_000 },
  maxConnectionsPerAddress: { name: 'MAX_CONNECTIONS_PER_ADDRESS', fallback: 500, min: 1, max: 1_000_000 },
  wsHandshakeTimeoutMs: { name: 'WS_HANDSHAKE_TIMEOUT_MS', fallback: 10_000, min: 100, max: 300_000 },
  roomHistorySize: { name: 'ROOM_HISTORY_SIZE', fallback: 500, min: 10, max: 100_000 },
  chatHistorySize: { name: 'CHAT_HISTORY_SIZE', fallback: 50, min: 0, max: 1000 },
  replayMaxBytes: { name: 'REPLAY_MAX_BYTES', fallback: 262_144, min: 1024, max: 67_108_864 },
  storeWaitMs: { name: 'STORE_WAIT_MS', fallback: 2000, min: 50, max: 60_000 },
  roomLeaseMs: { name: 'ROOM_LEASE_MS', fallback: 5000, min: 1000, max: 600_000 },
  auditRetentionDays: { name: 'AUDIT_RETENTION_DAYS', fallback: 30, min: 0, max: 36_500 }
} as const satisfies Record<string, IntRule>

export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = []

  const int = (rule: IntRule): number => {
    const raw = env[rule.name]
    if (raw === undefined || raw.trim() === '') return rule.fallback
    if (!/^\d+$/.test(raw.trim())) {
      problems.push(`${rule.name}=${JSON.stringify(raw)} is not a whole number (allowed ${rule.min}..${rule.max})`)
      return rule.fallback
    }
    const value = Number(raw.trim())
    if (value < rule.min || value > rule.max) {
      problems.push(`${rule.name}=${raw} is out of range (allowed ${rule.min}..${rule.max})`)
      return rule.fallback
    }
    return value
  }

  const text = (name: string): string | undefined => {
    const raw = env[name]
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim()
  }

  const databaseUrl = text('DATABASE_URL')
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must start with postgres:// or postgresql:// (unset it to use the embedded database)')
  }
  const cluster = parseCluster(env, text, databaseUrl, problems)

  const logLevel = (text('LOG_LEVEL') ?? 'info') as LogLevel
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)} must be one of ${LOG_LEVELS.join(', ')}`)
  }

  const socketWrites = (text('SOCKET_WRITES') ?? 'direct') as SocketWritesMode
  if (!SOCKET_WRITES_MODES.includes(socketWrites)) {
    problems.push(`SOCKET_WRITES=${JSON.stringify(env.SOCKET_WRITES)} must be one of ${SOCKET_WRITES_MODES.join(', ')}`)
  }

  const host = text('HOST') ?? '0.0.0.0'
  const nodeEnv = (text('NODE_ENV') ?? 'development') as NodeEnv
  if (!NODE_ENVS.includes(nodeEnv)) {
    problems.push(`NODE_ENV=${JSON.stringify(env.NODE_ENV)} must be one of ${NODE_ENVS.join(', ')} (unset means development)`)
  }

  const auth: AuthConfig = {
    jwtSecret: env.AUTH_JWT_SECRET === undefined || env.AUTH_JWT_SECRET === '' ? undefined : env.AUTH_JWT_SECRET,
    jwtPublicKey: text('AUTH_JWT_PUBLIC_KEY')?.replace(/\\n/g, '\n'),
    jwksUrl: text('AUTH_JWKS_URL'),
    issuer: text('AUTH_JWT_ISSUER'),
    audience: text('AUTH_JWT_AUDIENCE')
  }
  const keys = [auth.jwtSecret, auth.jwtPublicKey, auth.jwksUrl].filter((k) => k !== undefined)
  if (keys.length > 1) {
    problems.push('set only one of AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY and AUTH_JWKS_URL')
  }
  if (auth.jwtSecret !== undefined && Buffer.byteLength(auth.jwtSecret) < 32) {
    problems.push('AUTH_JWT_SECRET must be at least 32 bytes long (HS256 needs a 256-bit key)')
  }
  if (auth.jwtPublicKey !== undefined) {
    if (!auth.jwtPublicKey.includes('-----BEGIN PUBLIC KEY-----')) {
      problems.push('AUTH_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)')
    } else {
      try {
        publicKeyAlgorithm(auth.jwtPublicKey)
      } catch (err) {
        problems.push(`AUTH_JWT_PUBLIC_KEY ${(err as Error).message}`)
      }
    }
  }
  if (auth.jwksUrl !== undefined && !/^https?:\/\/\S+$/.test(auth.jwksUrl)) {
    problems.push('AUTH_JWKS_URL must be an http(s) URL')
  }
  if (keys.length === 0 && nodeEnv === 'production') {
    problems.push('NODE_ENV=production needs AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL: ' +
      'development identity (x-user-id) is refused in production')
  }

  const allowedOrigins = parseOrigins(env.ALLOWED_ORIGINS, problems)
  const corsAllowedHeaders = parseHeaderNames(text('CORS_ALLOWED_HEADERS'), problems)
  const metricsToken = text('METRICS_TOKEN')
  if (metricsToken !== undefined && !new RegExp(`^[A-Za-z0-9._~+/-]{${METRICS_TOKEN_MIN_LENGTH},}=*$`).test(metricsToken)) {
    problems.push(`METRICS_TOKEN must be at least ${METRICS_TOKEN_MIN_LENGTH} characters of A-Z a-z 0-9 . _ ~ + / - (a bearer token, e.g. openssl rand -hex 32)`)
  }

  const legacyRelayMode = (text('LEGACY_RELAY_MODE') ?? 'open') as LegacyRelayMode
  if (!LEGACY_RELAY_MODES.includes(legacyRelayMode)) {
    problems.push(`LEGACY_RELAY_MODE=${JSON.stringify(env.LEGACY_RELAY_MODE)} must be one of ${LEGACY_RELAY_MODES.join(', ')}`)
  }

  const singleProcessLock = (text('SINGLE_PROCESS_LOCK') ?? 'wait') as SingleProcessLockMode
  if (!SINGLE_PROCESS_LOCK_MODES.includes(singleProcessLock)) {
    problems.push(`SINGLE_PROCESS_LOCK=${JSON.stringify(env.SINGLE_PROCESS_LOCK)} must be one of ${SINGLE_PROCESS_LOCK_MODES.join(', ')}`)
  }

  const config: Config = {
    port: int(INT_VARIABLES.port),
    host,
    databaseUrl,
    dataDir: text('DATA_DIR') ?? './data',
    databasePoolMax: int(INT_VARIABLES.databasePoolMax),
    logLevel,
    socketWrites,
    nodeEnv,
    disconnectGraceMs: int(INT_VARIABLES.disconnectGraceMs),
    emptyRoomTtlMs: int(INT_VARIABLES.emptyRoomTtlMs),
    maxRoomParticipants: int(INT_VARIABLES.maxRoomParticipants),
    maxRoomsPerHost: int(INT_VARIABLES.maxRoomsPerHost),
    heartbeatMs: int(INT_VARIABLES.heartbeatMs),
    playbackFlushMs: int(INT_VARIABLES.playbackFlushMs),
    shutdownTimeoutMs: int(INT_VARIABLES.shutdownTimeoutMs),
    bodyLimitBytes: int(INT_VARIABLES.bodyLimitBytes),
    restRateLimitPerMinute: int(INT_VARIABLES.restRateLimitPerMinute),
    allowedOrigins,
    corsAllowedHeaders,
    metricsToken,
    wsMessagesPerSecond: int(INT_VARIABLES.wsMessagesPerSecond),
    wsMessageBurst: int(INT_VARIABLES.wsMessageBurst),
    wsFloodLimit: int(INT_VARIABLES.wsFloodLimit),
    maxConnectionsPerUser: int(INT_VARIABLES.maxConnectionsPerUser),
    maxRoomsPerConnection: int(INT_VARIABLES.maxRoomsPerConnection),
    slowConsumerBytes: int(INT_VARIABLES.slowConsumerBytes),
    wsConnectsPerUserPerMinute: int(INT_VARIABLES.wsConnectsPerUserPerMinute),
    wsConnectsPerAddressPerMinute: int(INT_VARIABLES.wsConnectsPerAddressPerMinute),
    wsMembershipWritesPerSecond: int(INT_VARIABLES.wsMembershipWritesPerSecond),
    wsMembershipWriteBurst: int(INT_VARIABLES.wsMembershipWriteBurst),
    maxConnectionsPerAddress: int(INT_VARIABLES.maxConnectionsPerAddress),
    wsHandshakeTimeoutMs: int(INT_VARIABLES.wsHandshakeTimeoutMs),
    legacyRelayMode,
    roomHistorySize: int(INT_VARIABLES.roomHistorySize),
    chatHistorySize: int(INT_VARIABLES.chatHistorySize),
    replayMaxBytes: int(INT_VARIABLES.replayMaxBytes),
    storeWaitMs: int(INT_VARIABLES.storeWaitMs),
    allowedVideoSchemes: parseSchemes(text('ALLOWED_VIDEO_SCHEMES'), problems),
    singleProcessLock,
    cluster: cluster === undefined ? undefined : { ...cluster, roomLeaseMs: int(INT_VARIABLES.roomLeaseMs) },
    roomLeaseMs: int(INT_VARIABLES.roomLeaseMs),
    auditRetentionDays: int(INT_VARIABLES.auditRetentionDays),
    auth
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return config
}

/**
 * REDIS_URL switches cluster mode on: it needs DATABASE_URL (the embedded database belongs to one process).
 * REDIS_PREFIX (default `wp:`) and NODE_ID (default: random per start) are checked only with it.
 */
function parseCluster (env: Record<string, string | undefined>, text: (name: string) => string | undefined, databaseUrl: string | undefined, problems: string[]): Omit<ClusterConfig, 'roomLeaseMs'> | undefined {
  const redisUrl = text('REDIS_URL')
  if (redisUrl === undefined) return undefined
  if (!/^rediss?:\/\/\S+$/.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL (unset it to run one process)')
  if (databaseUrl === undefined) problems.push('REDIS_URL (cluster mode) needs DATABASE_URL: the embedded database belongs to one process')
  const redisPrefix = env.REDIS_PREFIX === undefined || env.REDIS_PREFIX === '' ? 'wp:' : env.REDIS_PREFIX
  if (!/^[A-Za-z0-9:_.{}-]{1,64}$/.test(redisPrefix)) problems.push(`REDIS_PREFIX=${JSON.stringify(redisPrefix)} must be 1-64 characters of A-Za-z0-9:_.{}-`)
  const nodeId = text('NODE_ID') ?? `node-${randomBytes(4).toString('hex')}`
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) problems.push(`NODE_ID=${JSON.stringify(nodeId)} must be 1-64 characters of A-Za-z0-9_.-`)
  return { redisUrl, redisPrefix, nodeId }
}

/**
 * ALLOWED_VIDEO_SCHEMES: comma-separated URL schemes (without the colon), e.g. `http,https`. Unset: http and
 * https. `javascript`, `data`, `vbscript` and `file` are refused: a stored URL reaches every viewer's page.
 */
function parseSchemes (raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined) return ['http', 'https']
  const schemes: string[] = []
  for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    if (!/^[a-z][a-z0-9+.-]*$/.test(entry)) {
      problems.push(`ALLOWED_VIDEO_SCHEMES entry ${JSON.stringify(entry)} is not a lower-case URL scheme (e.g. https)`)
    } else if (['javascript', 'data', 'vbscript', 'file'].includes(entry)) {
      problems.push(`ALLOWED_VIDEO_SCHEMES must not allow ${entry}: (a stored URL is rendered by every viewer's page)`)
    } else if (!schemes.includes(entry)) {
      schemes.push(entry)
    }
  }
  if (schemes.length === 0 && !problems.some((p) => p.startsWith('ALLOWED_VIDEO_SCHEMES'))) problems.push('ALLOWED_VIDEO_SCHEMES lists no scheme (unset it for http,https)')
  return schemes
}

/**
 * ALLOWED_ORIGINS: a comma-separated list of exact origins as browsers send them in the Origin header
 * (scheme://host[:port], lower case, no path and no default port). Unset or blank means allow all.
 */
function parseOrigins (raw: string | undefined, problems: string[]): string[] | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  const origins: string[] = []
  for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const problem = originProblem(entry)
    if (problem !== undefined) problems.push(`ALLOWED_ORIGINS entry ${JSON.stringify(entry)} ${problem}`)
    else if (!origins.includes(entry)) origins.push(entry)
  }
  if (origins.length === 0 && !problems.some((p) => p.startsWith('ALLOWED_ORIGINS'))) {
    problems.push('ALLOWED_ORIGINS lists no origin (unset it to allow every origin)')
  }
  return origins
}

/**
 * CORS_ALLOWED_HEADERS: comma-separated header names (RFC 9110 tokens), compared without regard to case.
 * Unset or blank means DEFAULT_CORS_ALLOWED_HEADERS. `*` is refused: browsers never let it cover Authorization.
 */
function parseHeaderNames (raw: string | undefined, problems: string[]): string[] {
  if (raw === undefined) return [...DEFAULT_CORS_ALLOWED_HEADERS]
  const names: string[] = []
  for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    if (entry === '*') problems.push('CORS_ALLOWED_HEADERS entry "*" is not allowed: list the header names (browsers never let "*" cover Authorization)')
    else if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(entry)) problems.push(`CORS_ALLOWED_HEADERS entry ${JSON.stringify(entry)} is not a header name`)
    else if (!names.includes(entry.toLowerCase())) names.push(entry.toLowerCase())
  }
  if (names.length === 0 && !problems.some((p) => p.startsWith('CORS_ALLOWED_HEADERS'))) {
    problems.push('CORS_ALLOWED_HEADERS lists no header (unset it for the defaults)')
  }
  return names
}

function originProblem (entry: string): string | undefined {
  const example = 'write it as scheme://host[:port], e.g. https://example.com'
  if (entry === '*' || entry === 'null') return `is not allowed: ${example} (unset ALLOWED_ORIGINS to allow every origin)`
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+$/i.test(entry)) return `is not an origin (no path, query or credentials): ${example}`
  if (/^https?:/i.test(entry)) {
    let origin: string
    try {
      origin = new URL(entry).origin
    } catch {
      return `is not a valid URL origin: ${example}`
    }
    // Browsers send the origin serialized: lower case, no default port. An exact match needs the same form.
    if (origin !== entry) return `must be written exactly as browsers send it: ${origin}`
  }
  return undefined
}

/**
 * The one signature algorithm a PEM public key verifies: RSA (2048 bits or more) -> RS256, EC P-256 -> ES256.
 * Throws an Error whose message says why any other key is refused.
 */
export function publicKeyAlgorithm (pem: string): 'RS256' | 'ES256' {
  let key: KeyObject
  try {
    key = createPublicKey({ key: pem, format: 'pem' })
  } catch {
    throw new Error('is not a readable PEM public key (SPKI, -----BEGIN PUBLIC KEY-----)')
  }
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw new Error(`is a ${details.modulusLength ?? '?'}-bit RSA key: RS256 needs 2048 bits or more`)
    return 'RS256'
  }
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1') throw new Error(`is an EC key on ${details.namedCurve ?? 'an unknown curve'}: only P-256 (ES256) is supported`)
    return 'ES256'
  }
  throw new Error(`is a key of type ${key.asymmetricKeyType ?? 'unknown'}: only RSA (RS256) and EC P-256 (ES256) keys are supported`)
}

/** True when any JWT key is configured; otherwise identity comes from development headers. */
export function isJwtMode (auth: AuthConfig): boolean {
  return auth.jwtSecret !== undefined || auth.jwtPublicKey !== undefined || auth.jwksUrl !== undefined
}
