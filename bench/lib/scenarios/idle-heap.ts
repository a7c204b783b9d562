/**
 * Which objects an idle connection costs, by constructor (development): starts one target, takes a heap
 * snapshot, opens N idle connections in rooms of 50 (heartbeats on), holds 1.5 heartbeats, takes another, and
 * prints the difference per connection.
 *   npx tsx --conditions=watch-party-source bench/lib/scenarios/idle-heap.ts [ours|bare|socketio] [N] [outdir]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TargetKind } from '../clients.js'
import { aggregate, diffPerConnection, takeHeapSnapshot } from '../heap-snapshot.js'
import { memoryAfterGc } from '../inspector.js'
import { parseOptions } from '../options.js'
import { killAllChildren } from '../proc.js'
import { prepareDatabase, startServer, stopServer } from '../targets.js'
import { startWorkers, stopWorkers } from '../workers.js'
import { sleep } from './context.js'

const kind = (process.argv[2] ?? 'ours') as TargetKind
const n = Number(process.argv[3] ?? 3000)
const dir = process.argv[4] ?? `/tmp/idle-heap-${kind}`
mkdirSync(dir, { recursive: true })
const options = parseOptions([])
process.on('exit', killAllChildren)

const database = await prepareDatabase()
const [worker] = startWorkers(1, options.nice)
try {
  const server = await startServer(kind, options, database)
  try {
    const url = server.inspector!
    await worker!.call('target', { kind, port: server.port })
    // Warm up (first connections compile code, create lazily built tables), then measure from a settled state.
    const warm = await worker!.call<string[]>('hosts', { count: 2, prefix: 'warm', concurrency: 2 })
    await worker!.call('viewers', { assignments: warm.map((roomId) => ({ roomId, count: 49, from: 0 })), prefix: 'warm', concurrency: 20 })
    await sleep(options.heartbeatMs * 1.5)
    await worker!.call('closeAll')
    await sleep(3000)
    await takeHeapSnapshot(url, join(dir, 'before.heapsnapshot'))
    const m0 = await memoryAfterGc(url)
    const rooms = Math.ceil(n / 50)
    const roomIds = await worker!.call<string[]>('hosts', { count: rooms, prefix: 'h', concurrency: 50 }, 900_000)
    await worker!.call('viewers', { assignments: roomIds.map((roomId, r) => ({ roomId, count: Math.min(49, n - rooms - r * 49), from: 0 })).filter((a) => a.count > 0), prefix: 'h', concurrency: 50 }, 900_000)
    await sleep(options.heartbeatMs * 1.5)
    await takeHeapSnapshot(url, join(dir, 'after.heapsnapshot'))
    const m1 = await memoryAfterGc(url)
    const rows = diffPerConnection(await aggregate(join(dir, 'before.heapsnapshot'), true), await aggregate(join(dir, 'after.heapsnapshot'), true), n)
    const total = rows.reduce((a, r) => a + r.bytesPerConn, 0)
    const text = [
      `${kind}, ${n} idle connections: heapUsed +${Math.round((m1.heapUsed - m0.heapUsed) / n)} B/conn, rss +${Math.round((m1.rss - m0.rss) / n)} B/conn; snapshot rows >= 4 B/conn sum ${total} B/conn`,
      ...rows.slice(0, 150).map((r) => `${String(r.bytesPerConn).padStart(6)} B  ${String(r.perConn).padStart(6)}x  ${r.key}`)
    ].join('\n')
    writeFileSync(join(dir, 'diff.txt'), `${text}\n`)
    console.log(text)
  } finally {
    await stopServer(server)
  }
} finally {
  await stopWorkers([worker!])
  await database.cleanup()
}
