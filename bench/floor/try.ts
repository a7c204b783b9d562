/**
 * Tries the floor on its own, outside the bench:
 *
 *   npx tsx --conditions=watch-party-source bench/floor/try.ts --rooms 10 --viewers 100 --sync-hz 40 --seconds 10
 *   npx tsx --conditions=watch-party-source bench/floor/try.ts --shapes 10x100,1x1000,100x10 --deliveries 40000
 *
 * Compiles bench/floor/floor.c into bench/results/bin/, starts `--receivers` load-generator workers (default 2;
 * more when the sockets need them), runs the floor once per shape and prints each FloorRun as JSON, then a
 * one-line summary per shape. `--deliveries N` sets each shape's sync rate to about N deliveries per second
 * (syncHz = N / (rooms × viewers)) instead of `--sync-hz`.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildFloor, runFloor, type FloorRun } from '../lib/floor.js'
import { ROOT } from '../lib/proc.js'
import { startWorkers, stopWorkers } from '../lib/workers.js'

const { values } = parseArgs({
  options: {
    rooms: { type: 'string', default: '10' },
    viewers: { type: 'string', default: '100' },
    shapes: { type: 'string' },
    'sync-hz': { type: 'string', default: '4' },
    deliveries: { type: 'string' },
    'chat-hz': { type: 'string', default: '1' },
    seconds: { type: 'string', default: '10' },
    'sync-bytes': { type: 'string', default: '200' },
    'chat-bytes': { type: 'string', default: '200' },
    receivers: { type: 'string', default: '2' },
    repeat: { type: 'string', default: '1' }
  }
})

const shapes = (values.shapes ?? `${values.rooms}x${values.viewers}`).split(',').map((s) => {
  const [rooms, viewers] = s.split('x').map(Number)
  if (!Number.isInteger(rooms) || !Number.isInteger(viewers) || rooms! < 1 || viewers! < 0) throw new Error(`bad shape ${s}`)
  return { rooms: rooms!, viewers: viewers! }
})

const build = buildFloor(join(ROOT, 'bench', 'results', 'bin'))
if ('skipped' in build) {
  console.log(`floor skipped: ${build.skipped}`)
  process.exit(0)
}
console.error(`compiled with ${build.compiler}: ${build.binary}`)
const workers = startWorkers(Number(values.receivers))
const runs: FloorRun[] = []
try {
  for (const shape of shapes) {
    for (let i = 0; i < Number(values.repeat); i++) {
      const syncHz = values.deliveries !== undefined ? Math.round(Number(values.deliveries) / (shape.rooms * shape.viewers) * 100) / 100 : Number(values['sync-hz'])
      const run = await runFloor({
        binary: build.binary,
        ...shape,
        syncHz,
        chatHz: Number(values['chat-hz']),
        seconds: Number(values.seconds),
        syncBytes: Number(values['sync-bytes']),
        chatBytes: Number(values['chat-bytes']),
        workers,
        log: (line) => { console.error(line) }
      })
      runs.push(run)
      console.log(JSON.stringify(run))
    }
  }
} finally {
  await stopWorkers(workers)
}
for (const r of runs) {
  console.log(`${r.rooms}x${r.viewers} @ ${r.syncHz} Hz, ${r.syncBytes} B: ${r.deliveriesPerSec} deliveries/s (${(r.deliveredRatio * 100).toFixed(2)} %), ` +
    `floor CPU ${r.cpuPct} % = ${r.usPerDelivery} µs/delivery (user ${r.userUsPerDelivery} + sys ${r.sysUsPerDelivery}; getrusage ${r.rusageUsPerDelivery} µs, ` +
    `${(r.sysShare * 100).toFixed(1)} % kernel), p50 ${r.latency.p50} / p99 ${r.latency.p99} ms, receivers ${r.receiverCpu.join('+')} %, write errors ${r.writeErrors}, short writes ${r.shortWrites}${r.lateMs > 100 ? `, LATE by ${r.lateMs} ms (the machine is crowded)` : ''}`)
}
