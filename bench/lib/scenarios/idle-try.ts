/**
 * A run of the idle curve alone, against one target, outside run.ts (development):
 *   npx tsx --conditions=watch-party-source bench/lib/scenarios/idle-try.ts [ours|bare|socketio|colyseus] [1000,5000] [out.json]
 * Uses the bench's defaults (heartbeat 5 s, rooms of 50) and its database setup (DATABASE_URL or PGlite).
 */
import { writeFileSync } from 'node:fs'
import type { TargetKind } from '../clients.js'
import { parseOptions } from '../options.js'
import { killAllChildren } from '../proc.js'
import { prepareDatabase, startServer, stopServer } from '../targets.js'
import { startWorkers, stopWorkers } from '../workers.js'
import { idleCurve } from './idle.js'

const kind = (process.argv[2] ?? 'ours') as TargetKind
const sizes = (process.argv[3] ?? '1000').split(',').map(Number)
const out = process.argv[4]
const options = parseOptions(process.env.IDLE_TRY_FLAGS?.split(' ').filter((s) => s !== '') ?? [])
const log = (line: string): void => { console.log(line) }
process.on('exit', killAllChildren)

const database = await prepareDatabase()
const workers = startWorkers(1, options.nice)
try {
  let server = await startServer(kind, options, database)
  // IDLE_TRY_RESTART=1: a fresh server process per size (RSS comparable across sizes).
  const restart = process.env.IDLE_TRY_RESTART === '1'
    ? async () => {
      await stopServer(server)
      server = await startServer(kind, options, database)
      return server
    }
    : undefined
  try {
    await Promise.all(workers.map(async (w) => await w.call('target', { kind, port: server.port })))
    const curve = await idleCurve({ server, workers, options, postgres: database.env.DATABASE_URL !== undefined, log }, sizes, options.idleRoomSize, restart)
    console.log(JSON.stringify(curve, null, 2))
    if (out !== undefined) writeFileSync(out, `${JSON.stringify(curve, null, 2)}\n`)
  } finally {
    await stopServer(server)
  }
} finally {
  await stopWorkers(workers)
  await database.cleanup()
}
