/**
 * Two processes starting together on an empty database (two replicas at once, a deploy that overlaps):
 * without cluster mode one of them serves and the other waits for it to stop (the process lock), while the
 * migration advisory lock still serializes migrations between the serving process and `npm run db:migrate`.
 * Postgres only: the embedded database belongs to one process and cannot be shared.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import pg from 'pg'
import t from 'tap'
import { DATABASE_TIMEOUTS, MIGRATION_LOCK_KEY, MIGRATIONS_FOLDER } from '../../src/db/client.js'
import { createPostgresDatabase } from '../helpers/database.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'

const serverUrl = process.env.DATABASE_URL
const skip = serverUrl === undefined || serverUrl === '' ? 'needs DATABASE_URL: two processes cannot share the embedded database' : false
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

t.test('two processes starting together: one migrates and serves, the other waits for it and then serves the same database', { skip }, async (t) => {
  const url = await createPostgresDatabase(t, serverUrl!)
  const database = { kind: 'postgres', url } as const
  const observer = new pg.Client({ connectionString: url })
  await observer.connect()
  t.teardown(async () => { await observer.end() })

  // Hold the migration lock so that the serving process and the migration CLI certainly meet at it.
  await observer.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY])
  const servers = [await startServer(t, { database, wait: false }), await startServer(t, { database, wait: false })]
  const cli = spawn(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: url },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let cliOutput = ''
  cli.stdout.setEncoding('utf8').on('data', (chunk: string) => { cliOutput += chunk })
  cli.stderr.setEncoding('utf8').on('data', (chunk: string) => { cliOutput += chunk })
  const cliExit = once(cli, 'close') as Promise<[number | null]>
  t.teardown(() => { cli.kill('SIGKILL') })

  const describe = (): string => `${servers.map((s) => s.describe()).join('\n')}\n--- migrate cli ---\n${cliOutput}`
  const migrationWaiters = async (): Promise<number> => {
    const { rows: [row] } = await observer.query(
      "select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())")
    return row.n as number
  }
  const deadline = Date.now() + 60_000
  const isWaitLog = (s: ServerProcess): boolean => s.logs.some((l) => String(l.msg).startsWith('another server process is serving this database; waiting'))
  while (await migrationWaiters() < 2 || !servers.some(isWaitLog)) {
    if (Date.now() > deadline) throw new Error(`one process and the CLI should wait for the migration lock, the other process for the first\n${describe()}`)
    if (servers.some((s) => s.exit !== undefined)) throw new Error(`a process exited\n${describe()}`)
    await delay(50)
  }
  const serving = servers.find((s) => !isWaitLog(s))!
  const waiting = servers.find(isWaitLog)!
  t.ok(serving !== waiting, 'exactly one process waits for the other')
  // A migration may take longer than any query is allowed to (index builds): waiting for it is no timeout.
  await delay(DATABASE_TIMEOUTS.queryMs + 500)
  t.same(servers.map((s) => s.exit), [undefined, undefined], 'both still wait, neither gave up')
  await observer.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])

  await serving.listening
  t.equal((await cliExit)[0], 0, 'the migration CLI finished')
  t.equal((await serving.http('GET', '/readyz')).status, 200, 'the first process is ready')
  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, 'utf8')) as { entries: unknown[] }
  const { rows: [applied] } = await observer.query('select count(*)::int as n from drizzle.__drizzle_migrations')
  t.equal(applied.n, journal.entries.length, 'each migration was applied once')
  const created = await serving.http('POST', '/rooms', { userId: 'alice', body: { name: 'Made on one' } })
  t.equal(created.status, 201)
  t.notOk(waiting.logs.some((l) => String(l.msg).startsWith('Server listening at')), 'the other process does not serve beside it')

  serving.kill('SIGTERM')
  t.equal((await serving.exited).code, 0)
  await waiting.listening
  t.match((await waiting.http('GET', `/rooms/${created.body.id as string}`, { userId: 'bob' })).body, { name: 'Made on one', hostId: 'alice' },
    'the second process serves the same database once the first stopped')
})
