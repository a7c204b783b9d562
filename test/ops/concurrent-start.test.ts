/**
 * Two processes starting together on an empty database (a rolling deploy, two replicas at once): the
 * migration advisory lock lets one migrate while the other waits, and both come up.
 * Postgres only: the embedded database belongs to one process and cannot be shared.
 */
import { readFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { DATABASE_TIMEOUTS, MIGRATION_LOCK_KEY, MIGRATIONS_FOLDER } from '../../src/db/client.js'
import { createPostgresDatabase } from '../helpers/database.js'
import { startServer } from '../helpers/server-process.js'

const serverUrl = process.env.DATABASE_URL
const skip = serverUrl === undefined || serverUrl === '' ? 'needs DATABASE_URL: two processes cannot share the embedded database' : false

t.test('two processes starting together on an empty database both come up', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const database = { kind: 'postgres', url } as const
  const observer = new pg.Client({ connectionString: url })
  await observer.connect()
  t.teardown(async () => { await observer.end() })

  // Hold the migration lock so that both processes certainly meet at it, as they would in a real race.
  await observer.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
  const servers = [await startServer(t, { database, wait: false }), await startServer(t, { database, wait: false })]
  const waiting = async (): Promise<number> => {
    const { rows: [row] } = await observer.query(
      "select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())")
    return row.n as number
  }
  const deadline = Date.now() + 60_000
  while (await waiting() < 2) {
    if (Date.now() > deadline) throw new Error(`both processes should wait for the migration lock\n${servers.map((s) => s.describe()).join('\n')}`)
    if (servers.some((s) => s.exit !== undefined)) throw new Error(`a process exited\n${servers.map((s) => s.describe()).join('\n')}`)
    await delay(50)
  }
  // A migration may take longer than any query is allowed to (index builds): waiting for it is no timeout.
  await delay(DATABASE_TIMEOUTS.queryMs + 500)
  t.same(servers.map((s) => s.exit), [undefined, undefined], 'both still wait, neither gave up')
  await observer.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])

  const ports = await Promise.all(servers.map(async (s) => await s.listening))
  t.equal(ports.length, 2)
  for (const server of servers) t.equal((await server.http('GET', '/readyz')).status, 200, `${server.name} is ready`)
  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, 'utf8')) as { entries: unknown[] }
  const { rows: [applied] } = await observer.query('select count(*)::int as n from drizzle.__drizzle_migrations')
  t.equal(applied.n, journal.entries.length, 'each migration was applied once')

  const [one, two] = servers as [typeof servers[0], typeof servers[0]]
  const created = await one.http('POST', '/rooms', { userId: 'alice', body: { name: 'Made on one' } })
  t.equal(created.status, 201)
  t.match((await two.http('GET', `/rooms/${created.body.id as string}`, { userId: 'bob' })).body, { name: 'Made on one', hostId: 'alice' },
    'both serve the same database')
})
