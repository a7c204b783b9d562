/**
 * A fresh, migrated database for one test file: a new Postgres database on the server of DATABASE_URL
 * when it is set (dropped in teardown), else an in-memory PGlite (closed in teardown). Files run in parallel.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js'

export interface TestDatabase {
  handle: DatabaseHandle
  /** The connection string of the fresh database; undefined on PGlite. */
  url: string | undefined
}

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export async function createTestDatabase (t: Teardown, options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const serverUrl = process.env.DATABASE_URL
  if (serverUrl === undefined || serverUrl === '') {
    const handle = await openDatabase({ databaseUrl: undefined, dataDir: 'memory://' })
    if (options.migrate !== false) await handle.migrate()
    t.teardown(async () => { await handle.close() })
    return { handle, url: undefined }
  }
  const url = await createPostgresDatabase(t, serverUrl)
  const handle = await openDatabase({ databaseUrl: url, dataDir: 'memory://', poolMax: 5 })
  if (options.migrate !== false) await handle.migrate()
  t.teardown(async () => { await handle.close() })
  return { handle, url }
}

/** Creates an empty database next to the one `serverUrl` names; drops it in teardown. */
export async function createPostgresDatabase (t: Teardown, serverUrl: string): Promise<string> {
  const name = `wp_test_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`create database ${name}`)
  await admin.end()
  t.teardown(async () => {
    const dropper = new pg.Client({ connectionString: serverUrl })
    await dropper.connect()
    await dropper.query(`drop database if exists ${name} with (force)`)
    await dropper.end()
  })
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return url.toString()
}
