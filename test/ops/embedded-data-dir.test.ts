/**
 * The embedded database belongs to one process: a second server on the same DATA_DIR is refused with a
 * clear error instead of writing the same files, and the lock of a killed server does not block the next one.
 * Runs on either database setting: it always uses an embedded data directory of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startServer } from '../helpers/server-process.js'

t.test('a second server on one DATA_DIR exits 1 naming the first; after a kill -9 the next one starts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wp-datadir-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const database = { kind: 'pglite', dataDir: join(dir, 'data') } as const
  const first = await startServer(t, { database })
  const created = await first.http('POST', '/rooms', { userId: 'alice', body: { name: 'Kept' } })
  t.equal(created.status, 201)

  const second = await startServer(t, { database, wait: false })
  t.equal((await second.exited).code, 1)
  t.match(second.output.join(''), `refusing to start: DATA_DIR ${database.dataDir} is in use by another server process (pid ${first.pid})`)
  t.equal((await first.http('GET', '/readyz')).status, 200, 'the first server serves on')

  first.kill('SIGKILL')
  await first.exited
  const third = await startServer(t, { database })
  t.match((await third.http('GET', `/rooms/${created.body.id as string}`, { userId: 'bob' })).body, { name: 'Kept', hostId: 'alice' },
    'the stale lock of the killed server was taken over and its data is there')
  third.kill('SIGTERM')
  t.equal((await third.exited).code, 0)
  const fourth = await startServer(t, { database })
  t.equal((await fourth.http('GET', '/readyz')).status, 200, 'a graceful stop released the lock')
})
