/**
 * The embedded data directory's lock file: one process at a time, stale locks (a dead pid) taken over.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DATA_DIR_LOCK_FILE, DataDirInUseError, lockDataDir } from '../../src/db/data-dir-lock.js'

function tempDir (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wp-lock-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return join(dir, 'data')
}

/** The pid of a process that has certainly exited (and been reaped). */
function deadPid (): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' })
  return Number(child.stdout.trim())
}

t.test('the lock file holds our pid and is removed on release', async (t) => {
  const dir = tempDir(t)
  const lock = lockDataDir(dir)
  t.equal(readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8').trim(), String(process.pid))
  lock.release()
  t.notOk(existsSync(join(dir, DATA_DIR_LOCK_FILE)))
  lockDataDir(dir).release()
})

t.test('a directory locked by a live process is refused with its pid', async (t) => {
  const dir = tempDir(t)
  lockDataDir(dir)
  // The parent of this test process runs for certain, and is not us.
  writeFileSync(join(dir, DATA_DIR_LOCK_FILE), `${process.ppid}\n`)
  let refused: unknown
  try {
    lockDataDir(dir)
  } catch (err) {
    refused = err
  }
  t.ok(refused instanceof DataDirInUseError, 'refused with DataDirInUseError')
  t.match(refused, { pid: process.ppid, message: `DATA_DIR ${dir} is in use by another server process (pid ${process.ppid})` })
  t.equal(readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8').trim(), String(process.ppid), 'the live lock is left alone')
})

t.test('a lock whose pid is gone, unreadable, or our own is stale and taken over', async (t) => {
  for (const [what, content] of [['a dead pid', `${deadPid()}\n`], ['garbage', 'not a pid'], ['an empty file', ''], ['our own pid', `${process.pid}\n`]] as const) {
    const dir = tempDir(t)
    lockDataDir(dir).release()
    writeFileSync(join(dir, DATA_DIR_LOCK_FILE), content)
    const lock = lockDataDir(dir)
    t.equal(readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8').trim(), String(process.pid), `${what}: taken over`)
    lock.release()
  }
})

t.test('release leaves a lock that is no longer ours', async (t) => {
  const dir = tempDir(t)
  const lock = lockDataDir(dir)
  writeFileSync(join(dir, DATA_DIR_LOCK_FILE), `${process.ppid}\n`)
  lock.release()
  t.equal(readFileSync(join(dir, DATA_DIR_LOCK_FILE), 'utf8').trim(), String(process.ppid))
})
