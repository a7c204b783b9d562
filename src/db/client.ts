/**
 * The database handle: one drizzle API over either a Postgres pool (DATABASE_URL set) or an embedded PGlite.
 *
 * Contract: `migrate()` applies pending migrations from migrations/ and is safe to call from several
 * processes at once on Postgres (it holds an advisory lock while it runs). `close()` releases every
 * connection; the handle is unusable afterwards.
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { sql } from 'drizzle-orm'
import pg from 'pg'
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
const MIGRATION_LOCK_KEY = 7_318_004_221

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
    connectionTimeoutMillis: 5000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000
  })
  pool.on('error', (err) => { onPoolError?.(err) })
  const db = drizzle({ client: pool, schema })
  let closed = false
  return {
    db,
    kind: 'postgres',
    async ping (timeoutMs = 2000) {
      await withTimeout(db.execute(sql`select 1`), timeoutMs)
    },
    async migrate () {
      const client = await pool.connect()
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
        try {
          await migrate(drizzle({ client, schema }), { migrationsFolder: MIGRATIONS_FOLDER })
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
        }
      } finally {
        client.release()
      }
    },
    async close () {
      if (closed) return
      closed = true
      await pool.end()
    }
  }
}

async function openPglite (dataDir: string): Promise<DatabaseHandle> {
  const { PGlite } = await import('@electric-sql/pglite')
  const { drizzle } = await import('drizzle-orm/pglite')
  const { migrate } = await import('drizzle-orm/pglite/migrator')
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true })
  const client = await PGlite.create(dataDir)
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
      await client.close()
    }
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number): Promise<T> {
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
