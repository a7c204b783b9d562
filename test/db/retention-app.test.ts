/**
 * The app runs the audit-log retention (src/db/retention.ts) in the background from its start, with the
 * retention of AUDIT_RETENTION_DAYS, and stops it on close. Rows are written with SQL, backdated.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import t from 'tap'
import type { Database } from '../../src/db/client.js'
import { createTestApp } from '../helpers/app.js'
import { createTestDatabase } from '../helpers/database.js'

async function counts (db: Database): Promise<{ old: number, fresh: number }> {
  const result = await db.execute(sql`select count(*) filter (where created_at < now() - interval '7 days')::int as old,
    count(*) filter (where created_at >= now() - interval '7 days')::int as fresh from room_events`)
  const row = (result as unknown as { rows: Array<{ old: number | string, fresh: number | string }> }).rows[0]!
  return { old: Number(row.old), fresh: Number(row.fresh) }
}

t.test('the app prunes in the background from its start, and rooms are served meanwhile', async (t) => {
  const database = await createTestDatabase(t)
  const db = database.handle.db
  const { rows: [room] } = await db.execute(sql`insert into rooms (name, host_id) values ('Audited', 'alice') returning id`) as unknown as { rows: Array<{ id: string }> }
  await db.execute(sql`insert into room_events (room_id, type, actor_id, created_at)
    select ${room!.id}::uuid, 'joined', 'user-' || n, now() - interval '10 days' from generate_series(1, 2500) n`)
  await db.execute(sql`insert into room_events (room_id, type, actor_id, created_at)
    select ${room!.id}::uuid, 'left', 'user-' || n, now() - interval '3 days' from generate_series(1, 10) n`)

  const { app } = await createTestApp(t, { database, env: { AUDIT_RETENTION_DAYS: '7' } })
  const created = await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'bob' }, payload: { name: 'During the pass' } })
  t.equal(created.statusCode, 201, 'rooms are served while the pass runs')
  // No event tells when a background pass is done: poll the table.
  const deadline = Date.now() + 30_000
  while ((await counts(db)).old > 0) {
    if (Date.now() > deadline) throw new Error(`old rows left: ${JSON.stringify(await counts(db))}`)
    await delay(50)
  }
  const after = await counts(db)
  t.equal(after.old, 0, 'rows older than 7 days are gone')
  t.equal(after.fresh, 11, 'the 3-day-old rows and the new room\'s audit row are kept')
})
