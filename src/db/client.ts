/**
 * The database handle: one drizzle API over either a Postgres pool (DATABASE_URL set) or an embedded PGlite.
 *
 * Contract: `migrate()` applies pending migrations from migrations/ and is safe to call from several
 * processes at once on Postgres (it holds an advisory lock while it runs). `close()` releases every
 * connection; the handle is unusable afterwards. An embedded data directory (not `memory://`) is opened by
 * one process at a time: opening one another process holds throws DataDirInUseError (src/db/data-dir-lock.ts).
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { sql } from 'drizzle-orm'
import pg from 'pg'
import { lockDataDir } from './data-dir-lock.js'
import { schema } from './schema.js'

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>

export interface DatabaseHandle {
  readonly db: Database
  readonly kind: 'postgres' | 'pglite'
  /** Resolves when the database answers a trivial query within `timeoutMs`. */
  ping (timeoutMs?: number): Promise<void>
  migrate (): Promise<void>
  close (): Promise<void>
}

export interface DatabaseOptions {
  databaseUrl: string | undefined
  dataDir: string
  poolMax?: number
  /** Called with errors of idle pooled connections (which must never crash the process). */
  onPoolError?: (err: Error) => void
}

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url))

/** Any 64-bit number unique to this project: the advisory lock that serializes migrations. */
export const MIGRATION_LOCK_KEY = 7_318_004_221

/**
 * How long connecting may take, and how long a pooled connection may be held for one query or transaction,
 * before the call fails (the caller answers SERVICE_UNAVAILABLE). Every call the server makes is a few
 * single-row statements that a healthy database answers in milliseconds. While the database does not
 * answer, a room's other requests wait behind its pending write: these bound how long an outage stalls a room.
 */
export const DATABASE_TIMEOUTS = { connectMs: 3000, queryMs: 5000 } as const

export async function openDatabase (options: DatabaseOptions): Promise<DatabaseHandle> {
  return options.databaseUrl === undefined
    ? await openPglite(options.dataDir)
    : await openPostgres(options.databaseUrl, options.poolMax ?? 10, options.onPoolError)
}

async function openPostgres (url: string, poolMax: number, onPoolError?: (err: Error) => void): Promise<DatabaseHandle> {
  const { drizzle } = await import('drizzle-orm/node-postgres')
  const { migrate } = await import('drizzle-orm/node-postgres/migrator')
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    connectionTimeoutMillis: DATABASE_TIMEOUTS.connectMs,
    idleTimeoutMillis: 30_000
  })
  pool.on('error', (err) => { onPoolError?.(err) })
  leaseClients(pool, DATABASE_TIMEOUTS.queryMs)
  const db = drizzle({ client: pool, schema })
  let closed = false
  return {
    db,
    kind: 'postgres',
    async ping (timeoutMs = 2000) {
      await withTimeout(db.execute(sql`select 1`), timeoutMs)
    },
    async migrate () {
      // Its own connection, outside the pool's hold limit: waiting for another process's migration (the lock)
      // or running a long one (an index build) is not the database being away.
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: DATABASE_TIMEOUTS.connectMs })
      client.on('error', () => {})
      await client.connect()
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
        try {
          await migrate(drizzle({ client, schema }), { migrationsFolder: MIGRATIONS_FOLDER })
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
        }
      } finally {
        await client.end()
      }
    },
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}

/**
 * Bounds how long a pooled connection may be checked out, and gives the pool back connections lost while
 * checked out, so that no outage can crash the process, leave the pool empty after it is over, or commit a
 * half-done transaction later:
 * - a connection that dies while checked out emits 'error' on its client, where the pool listens only while
 *   the client is idle: unheard, that error would crash the process;
 * - drizzle's transaction() releases its client only if BEGIN succeeded: a connection lost during BEGIN
 *   would stay checked out for ever;
 * - a connection that stops answering (a partition) would hold its query, and its transaction open, until
 *   the connection dies, which may be never; a query timeout alone would hand it back to the pool with that
 *   transaction still open, for the next user's COMMIT to commit. So a checkout that outlasts `maxHoldMs`
 *   ends its connection (the database rolls the transaction back).
 * Released with an error, the pool ends the connection and frees its slot (the holder's own release() is then
 * a no-op); the holder's query fails, and the caller answers SERVICE_UNAVAILABLE.
 */
function leaseClients (pool: pg.Pool, maxHoldMs: number): void {
  const leases = new Map<pg.PoolClient, NodeJS.Timeout>()
  const reclaim = (client: pg.PoolClient, err: Error): void => {
    const lease = leases.get(client)
    if (lease === undefined) return
    clearTimeout(lease)
    leases.delete(client)
    const release = client.release
    client.release = () => {}
    release(err)
  }
  pool.on('connect', (client) => {
    client.on('error', (err) => { reclaim(client as pg.PoolClient, err) })
  })
  pool.on('acquire', (client) => {
    const lease = setTimeout(() => { reclaim(client, new Error(`database connection held over ${maxHoldMs} ms; dropped`)) }, maxHoldMs)
    lease.unref()
    leases.set(client, lease)
  })
  pool.on('release', (_err: Error | undefined, client: pg.PoolClient) => {
    clearTimeout(leases.get(client))
    leases.delete(client)
  })
}

async function openPglite (dataDir: string): Promise<DatabaseHandle> {
  const { PGlite } = await import('@electric-sql/pglite')
  const { drizzle } = await import('drizzle-orm/pglite')
  const { migrate } = await import('drizzle-orm/pglite/migrator')
  const inMemory = dataDir.startsWith('memory://')
  if (!inMemory) mkdirSync(dataDir, { recursive: true })
  const lock = inMemory ? undefined : lockDataDir(dataDir)
  let client: InstanceType<typeof PGlite>
  try {
    client = await PGlite.create(dataDir)
  } catch (err) {
    lock?.release()
    throw err
  }
  const db = drizzle({ client, schema })
  let closed = false
  return {
    db,
    kind: 'pglite',
    async ping (timeoutMs = 2000) {
      await withTimeout(db.execute(sql`select 1`), timeoutMs)
    },
    async migrate () {
      // PGlite is single-process and single-connection: no lock is needed.
      await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER })
    },
    async close () {
      if (closed) return
      closed = true
      try {
        await client.close()
      } finally {
        lock?.release()
      }
    }
  }
}

/** Rejects when `promise` has not settled within `ms` (the promise itself is not cancelled). */
export async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`database did not answer within ${ms} ms`)) }, ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
