/**
 * Retention of the `room_events` audit log: rows older than AUDIT_RETENTION_DAYS are deleted in the
 * background, so the log does not grow for ever.
 *
 * Contract:
 * - `start()` runs a pass at once and then every `intervalMs`; `stop()` ends the schedule and resolves once a
 *   running pass has stopped (it stops between two batches). `days = 0` keeps everything: start() does nothing.
 * - A pass deletes in id order, at most `batchSize` rows per statement with a pause of `pauseMs` between
 *   statements, so it never holds many row locks or a connection for long and the rooms' own writes go
 *   between its statements. Each statement reads the next `batchSize` rows by primary key from where the last
 *   one stopped, deletes those older than the cutoff, and the pass ends at the first row inside the
 *   retention window: ids are handed out in insertion order and created_at is the insertion time, so
 *   everything before it is older. No index on created_at is needed; a pass with nothing to delete reads one
 *   batch.
 * - The cutoff is the database's clock (`now()`), the clock created_at is written with.
 * - A failed pass (the database away) is logged and left to the next run; it never throws out of the schedule.
 */
import { sql } from 'drizzle-orm'
import type { Database } from './client.js'

export const AUDIT_RETENTION_DEFAULTS = { batchSize: 1000, pauseMs: 100, intervalMs: 3_600_000 } as const

export interface RetentionLogger {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface AuditRetentionOptions {
  days: number
  log: RetentionLogger
  batchSize?: number
  pauseMs?: number
  intervalMs?: number
}

interface BatchRow extends Record<string, unknown> {
  deleted: number | string
  last_id: number | string | null
  kept: number | string
}

export class AuditRetention {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private readonly batchSize: number
  private readonly pauseMs: number
  private readonly intervalMs: number

  constructor (private readonly db: Database, private readonly options: AuditRetentionOptions) {
    this.batchSize = options.batchSize ?? AUDIT_RETENTION_DEFAULTS.batchSize
    this.pauseMs = options.pauseMs ?? AUDIT_RETENTION_DEFAULTS.pauseMs
    this.intervalMs = options.intervalMs ?? AUDIT_RETENTION_DEFAULTS.intervalMs
  }

  start (): void {
    if (this.options.days === 0 || this.stopped || this.running !== undefined || this.timer !== undefined) return
    this.run()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
    await this.running
  }

  /** One pass; resolves with the number of rows deleted. Throws what the database threw. */
  async prune (): Promise<number> {
    let deleted = 0
    let after = 0
    for (;;) {
      const result = await this.db.execute(sql`
        with batch as (
          select id, created_at from room_events where id > ${after} order by id limit ${this.batchSize}
        ), gone as (
          delete from room_events e using batch b
          where e.id = b.id and b.created_at < now() - make_interval(days => ${this.options.days}::int)
          returning e.id
        )
        select (select count(*) from gone) as deleted,
               (select max(id) from batch) as last_id,
               (select count(*) from batch where created_at >= now() - make_interval(days => ${this.options.days}::int)) as kept`)
      const row = (result as unknown as { rows: BatchRow[] }).rows[0]
      if (row === undefined) return deleted
      deleted += Number(row.deleted)
      if (row.last_id === null || Number(row.kept) > 0 || this.stopped) return deleted
      after = Number(row.last_id)
      await new Promise<void>((resolve) => { setTimeout(resolve, this.pauseMs).unref() })
    }
  }

  private run (): void {
    const startedAt = Date.now()
    this.running = this.prune().then((deleted) => {
      if (deleted > 0) this.options.log.info({ deleted, days: this.options.days, ms: Date.now() - startedAt }, 'audit retention: old room_events deleted')
    }, (err: unknown) => {
      this.options.log.warn({ err }, 'audit retention pass failed; retried at the next run')
    }).finally(() => {
      this.running = undefined
      if (this.stopped) return
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.run()
      }, this.intervalMs)
      this.timer.unref()
    })
  }
}
