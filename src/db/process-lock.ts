/**
 * One server process per PostgreSQL database while there is no cluster mode. Every process assumes it owns
 * every room (it reads them all at start and runs their grace timers), so a second one beside a running one
 * would expire the graces of people watching on the first and hand their host roles away.
 *
 * Contract:
 * - `ProcessLock.acquire` resolves once this process holds a session-level advisory lock
 *   (PROCESS_LOCK_KEY, not the migration lock's key) on a connection of its own, outside the pool, for the
 *   life of the process. Held by another process: mode `refuse` rejects with ProcessLockHeldError naming the
 *   holder; mode `wait` polls every `retryMs`, logs every `waitLogMs` that it waits and for whom, and resolves
 *   once the other process let go. The signal aborts the wait (rejects with the signal's reason).
 * - Once held, the lock connection is checked every `checkMs`. A session lost (a database outage, a killed
 *   backend, a connection that stopped answering) loses the lock with it: the lock is taken again as soon as
 *   the database answers. If another process took it meanwhile, `onTakenOver` is called once with the holder,
 *   and the caller must stop serving. The process keeps serving while the database is away (as in any outage);
 *   the window in which two processes run is the time this one needs to reconnect and find out.
 * - `release()` gives the lock up and ends the connection.
 */
import { hostname } from 'node:os'
import pg from 'pg'
import { DATABASE_TIMEOUTS, withTimeout } from './client.js'

/** The advisory lock a serving process holds (the migration lock is MIGRATION_LOCK_KEY). */
export const PROCESS_LOCK_KEY = 7_318_004_222

export type ProcessLockMode = 'wait' | 'refuse'

export const PROCESS_LOCK_TIMING = { retryMs: 1000, waitLogMs: 5000, checkMs: 2000 } as const

export interface ProcessLockLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}

export interface ProcessLockOptions {
  url: string
  mode: ProcessLockMode
  log: ProcessLockLogger
  /** Called at most once: the lock was lost and another process holds it now. */
  onTakenOver: (holder: string) => void
  signal?: AbortSignal
  timing?: Partial<typeof PROCESS_LOCK_TIMING>
}

export class ProcessLockHeldError extends Error {
  constructor (readonly holder: string) {
    super(`another server process is serving this database (${holder}). Without cluster mode one database is served by one process: ` +
      'stop the other process first, or start this one with SINGLE_PROCESS_LOCK=wait to take over once it stops.')
    this.name = 'ProcessLockHeldError'
  }
}

/** How this process names itself to the database (pg_stat_activity.application_name, at most 63 bytes). */
export const APPLICATION_NAME = `watch-party pid=${process.pid} host=${hostname()}`.slice(0, 63)

interface Holder { backendPid: number, backendStart: number | undefined, text: string }

export class ProcessLock {
  private client: pg.Client | undefined
  /** The database session that held our lock (pid and start); a session we lost may still hold it a while. */
  private backendPid = 0
  private backendStart: number | undefined
  private checkTimer: NodeJS.Timeout | undefined
  private released = false
  private regaining = false
  private readonly timing: typeof PROCESS_LOCK_TIMING

  private constructor (private readonly options: ProcessLockOptions) {
    this.timing = { ...PROCESS_LOCK_TIMING, ...options.timing }
  }

  static async acquire (options: ProcessLockOptions): Promise<ProcessLock> {
    const lock = new ProcessLock(options)
    await lock.firstAcquire()
    return lock
  }

  async release (): Promise<void> {
    this.released = true
    clearTimeout(this.checkTimer)
    const client = this.client
    this.client = undefined
    if (client === undefined) return
    try {
      await withTimeout(client.query('select pg_advisory_unlock($1)', [PROCESS_LOCK_KEY]), DATABASE_TIMEOUTS.queryMs)
    } catch {
      // Ending the session below releases it all the same.
    }
    await withTimeout(client.end(), DATABASE_TIMEOUTS.queryMs).catch(() => {})
  }

  private async firstAcquire (): Promise<void> {
    const { log, mode, signal } = this.options
    // A database that cannot be reached at all at start fails the start, as migrations would.
    let client = await this.connect()
    let lastLog = 0
    for (;;) {
      try {
        if (await this.tryLock(client)) {
          this.hold(client)
          if (lastLog > 0) log.info({}, 'the other server process stopped; this one holds the database now')
          return
        }
        const holder = await this.holder(client)
        if (mode === 'refuse') {
          await client.end().catch(() => {})
          throw new ProcessLockHeldError(holder?.text ?? 'its details are not visible to this database user')
        }
        if (Date.now() - lastLog >= this.timing.waitLogMs) {
          lastLog = Date.now()
          log.warn({ holder: holder?.text ?? 'unknown' },
            'another server process is serving this database; waiting for it to stop before serving (SINGLE_PROCESS_LOCK=wait)')
        }
      } catch (err) {
        if (err instanceof ProcessLockHeldError) throw err
        log.warn({ err }, 'process lock: the database did not answer; retrying')
        await client.end().catch(() => {})
        client = await this.reconnectUntilAborted()
        continue
      }
      await abortableDelay(this.timing.retryMs, signal)
    }
  }

  private async reconnectUntilAborted (): Promise<pg.Client> {
    for (;;) {
      await abortableDelay(this.timing.retryMs, this.options.signal)
      try {
        return await this.connect()
      } catch {
        // Still away: try again.
      }
    }
  }

  private async connect (): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: DATABASE_TIMEOUTS.connectMs,
      application_name: APPLICATION_NAME,
      keepAlive: true
    })
    // Errors of a held connection are handled through 'end' (hold()); unheard they would crash the process.
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (err) {
      await client.end().catch(() => {})
      throw err
    }
    return client
  }

  private async tryLock (client: pg.Client): Promise<boolean> {
    const { rows: [row] } = await withTimeout(client.query<{ ok: boolean, pid: number, since: Date | null }>(
      `select pg_try_advisory_lock($1) as ok, pg_backend_pid() as pid,
        (select backend_start from pg_stat_activity where pid = pg_backend_pid()) as since`, [PROCESS_LOCK_KEY]),
    DATABASE_TIMEOUTS.queryMs)
    if (row?.ok === true) {
      this.backendPid = row.pid
      this.backendStart = row.since === null ? undefined : new Date(row.since).getTime()
    }
    return row?.ok === true
  }

  /** Who holds the lock, as far as this database user may see (pg_stat_activity hides other users' details). */
  private async holder (client: pg.Client): Promise<Holder | undefined> {
    const { rows: [row] } = await withTimeout(client.query<{ pid: number, app: string | null, addr: string | null, since: Date | null }>(`
      select l.pid, a.application_name as app, host(a.client_addr) as addr, a.backend_start as since
      from pg_locks l left join pg_stat_activity a on a.pid = l.pid
      where l.locktype = 'advisory' and l.granted and l.objsubid = 1
        and l.database = (select oid from pg_database where datname = current_database())
        and ((l.classid::int8 << 32) | l.objid::int8) = $1::int8`, [PROCESS_LOCK_KEY]), DATABASE_TIMEOUTS.queryMs)
    if (row === undefined) return undefined
    const parts = [`database backend ${row.pid}`]
    if (row.app !== null && row.app !== '') parts.push(`application_name "${row.app}"`)
    if (row.addr !== null) parts.push(`from ${row.addr}`)
    if (row.since !== null) parts.push(`connected since ${new Date(row.since).toISOString()}`)
    return { backendPid: row.pid, backendStart: row.since === null ? undefined : new Date(row.since).getTime(), text: parts.join(', ') }
  }

  private hold (client: pg.Client): void {
    this.client = client
    let lost = false
    const onLost = (reason: unknown): void => {
      if (lost || this.released) return
      lost = true
      clearTimeout(this.checkTimer)
      this.client = undefined
      void client.end().catch(() => {})
      this.options.log.warn({ err: reason }, 'process lock: its database connection was lost; taking the lock again as soon as the database answers')
      void this.regain()
    }
    client.once('end', () => { onLost(new Error('connection ended')) })
    const check = (): void => {
      this.checkTimer = setTimeout(() => {
        withTimeout(client.query('select 1'), DATABASE_TIMEOUTS.queryMs).then(check, onLost)
      }, this.timing.checkMs)
      this.checkTimer.unref()
    }
    check()
  }

  /** After the lock's session was lost: take it again, or report who took it. */
  private async regain (): Promise<void> {
    if (this.regaining) return
    this.regaining = true
    const previous = { pid: this.backendPid, start: this.backendStart }
    try {
      while (!this.released) {
        await delay(this.timing.retryMs)
        if (this.released) return
        let client: pg.Client
        try {
          client = await this.connect()
        } catch {
          continue
        }
        try {
          if (await this.tryLock(client)) {
            if (this.released) {
              await client.end().catch(() => {})
              return
            }
            this.options.log.info({}, 'process lock taken again')
            this.hold(client)
            return
          }
          const holder = await this.holder(client)
          if (holder !== undefined && holder.backendPid === previous.pid && holder.backendStart === previous.start) {
            // Our own old session, which the database has not noticed is gone (a partition): no other process
            // can hold the lock while it does. End it and try again.
            await client.query('select pg_terminate_backend($1)', [previous.pid]).catch(() => {})
            await client.end().catch(() => {})
            continue
          }
          await client.end().catch(() => {})
          if (holder === undefined) continue // released between the two statements: try again
          this.options.log.error({ holder: holder.text }, 'another server process took this database while the lock connection was down; stopping')
          this.released = true
          this.options.onTakenOver(holder.text)
          return
        } catch {
          await client.end().catch(() => {})
        }
      }
    } finally {
      this.regaining = false
    }
  }
}

async function delay (ms: number): Promise<void> {
  await new Promise<void>((resolve) => { setTimeout(resolve, ms).unref() })
}

async function abortableDelay (ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted()
  if (signal === undefined) {
    await new Promise<void>((resolve) => { setTimeout(resolve, ms) })
    return
  }
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
