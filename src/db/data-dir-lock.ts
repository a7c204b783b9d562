/**
 * One process per embedded data directory: PGlite is an in-process database, and two processes opening one
 * DATA_DIR would each write its files as if alone (a corrupted database, not an error).
 *
 * Contract: `lockDataDir(dir)` creates `dir/watchparty.lock` holding this process's pid, or throws
 * DataDirInUseError naming the pid that holds it. A lock whose pid no longer runs (a kill -9, a power cut),
 * or is this very process's pid (a container restarted as pid 1 again), is stale: it is taken over.
 * The returned release() removes the file if it is still ours. Pids are only meaningful on one machine (one
 * pid namespace): two containers sharing one volume are not told apart.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const DATA_DIR_LOCK_FILE = 'watchparty.lock'

export class DataDirInUseError extends Error {
  constructor (readonly dataDir: string, readonly pid: number | undefined) {
    super(`DATA_DIR ${dataDir} is in use by another server process (${pid === undefined ? 'its pid is unreadable' : `pid ${pid}`}): the embedded database belongs to one process. ` +
      'Stop that process first, or give this one its own DATA_DIR (several processes need PostgreSQL, DATABASE_URL). ' +
      `If no such process runs, remove ${join(dataDir, DATA_DIR_LOCK_FILE)}.`)
    this.name = 'DataDirInUseError'
  }
}

export interface DataDirLock {
  readonly path: string
  release (): void
}

export function lockDataDir (dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true })
  const path = join(dataDir, DATA_DIR_LOCK_FILE)
  // Written whole to a private file first, then linked into place: link() fails if the lock exists, so the
  // lock file appears atomically with its pid in it (no reader ever sees it empty).
  const draft = `${path}.${process.pid}`
  writeFileSync(draft, `${process.pid}\n`)
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(draft, path)
        return { path, release: () => { releaseIfOurs(path) } }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = readPid(path)
      if (holder !== undefined && holder !== process.pid && isRunning(holder)) throw new DataDirInUseError(dataDir, holder)
      if (attempt > 0) throw new DataDirInUseError(dataDir, holder)
      clearStale(dataDir, path)
    }
  } finally {
    rmSync(draft, { force: true })
  }
}

/**
 * Removes a stale lock without removing a live one: another process may replace the stale file between our
 * read and our removal. The file is moved aside first (rename is atomic, so only one process gets a given
 * file), read again there, and put back if it turned out to be a live process's lock.
 */
function clearStale (dataDir: string, path: string): void {
  const aside = `${path}.stale.${process.pid}`
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const holder = readPid(aside)
  try {
    if (holder !== undefined && holder !== process.pid && isRunning(holder)) {
      try {
        linkSync(aside, path)
      } catch {
        // Yet another process locked it meanwhile: that lock stands, and ours is refused below all the same.
      }
      throw new DataDirInUseError(dataDir, holder)
    }
  } finally {
    rmSync(aside, { force: true })
  }
}

function readPid (path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function releaseIfOurs (path: string): void {
  if (readPid(path) !== process.pid) return
  try {
    unlinkSync(path)
  } catch {
    // Already gone: nothing to release.
  }
}
