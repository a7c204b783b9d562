/**
 * The per-target scenarios against given targets, outside run.ts (development, until options.ts lists
 * `colyseus` in TARGETS): fan-out shapes, saturation, join storm, idle curve; REST is left out.
 *   npx tsx --conditions=watch-party-source bench/colyseus-try.ts colyseus,ours [bench flags without --targets]
 * Writes <--out>/colyseus-try.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { TargetKind } from './lib/clients.js'
import { parseOptions } from './lib/options.js'
import { killAllChildren, ROOT } from './lib/proc.js'
import { fanout, idleCurve, joinStorm, saturation, type Context } from './lib/scenarios.js'
import { prepareDatabase, settle, startServer, stopServer } from './lib/targets.js'
import { startWorkers, stopWorkers } from './lib/workers.js'

const kinds = (process.argv[2] ?? 'colyseus').split(',') as TargetKind[]
const options = parseOptions(process.argv.slice(3))
const log = (line: string): void => { console.log(line) }
process.on('exit', killAllChildren)
process.on('SIGINT', () => { process.exit(130) })

const database = await prepareDatabase()
const workers = startWorkers(options.genProcs, options.nice)
const results: Record<string, Record<string, unknown>> = {}
let failed = 0
try {
  for (const kind of kinds) {
    log(`\n== ${kind} ==`)
    const out: Record<string, unknown> = { fanout: [] }
    results[kind] = out
    const server = await startServer(kind, options, database)
    log(`  pid ${server.pid}, inspector ${server.inspector ?? 'none'}`)
    const ctx: Context = { server, workers, options, postgres: database.env.DATABASE_URL !== undefined, log }
    await Promise.all(workers.map(async (w) => await w.call('target', { kind, port: server.port })))
    const scenario = async (name: string, run: () => Promise<void>): Promise<void> => {
      try {
        await run()
      } catch (err) {
        failed++
        out[`error ${name}`] = (err as Error).message
        log(`  ${name}: FAILED: ${(err as Error).message}`)
      } finally {
        await Promise.all(workers.map(async (w) => await w.call('closeAll').catch(() => {})))
        await settle(server).catch(() => {})
      }
    }
    try {
      if (options.scenarios.includes('fanout')) {
        for (const shape of options.fanout) {
          await scenario(`fanout ${shape.rooms}x${shape.viewers}`, async () => {
            const f = await fanout(ctx, shape)
            ;(out.fanout as unknown[]).push(f)
            log(`  fan-out ${shape.rooms}x${shape.viewers}: p50 ${f.latency.p50} / p99 ${f.latency.p99} ms, ${f.deliveriesPerSec}/s (${(f.deliveredRatio * 100).toFixed(2)} %), server ${f.serverUsPerDelivery} µs/delivery (user ${f.serverUserUsPerDelivery}, sys ${f.serverSystemUsPerDelivery}), RSS ${f.serverRssMb} MB`)
            if (f.deliveredRatio < 1) throw new Error(`delivered ${f.received} of ${f.expected}`)
          })
        }
      }
      if (options.scenarios.includes('saturation')) {
        await scenario('saturation', async () => {
          const s = await saturation(ctx)
          out.saturation = s
          log(`  saturation: best ${s.best === null ? 'none' : `${s.best.deliveriesPerSec}/s at ${s.best.syncHz} Hz (p99 ${s.best.p99} ms)`}`)
        })
      }
      if (options.scenarios.includes('join')) {
        await scenario('join', async () => {
          const j = await joinStorm(ctx)
          out.join = j
          log(`  join storm: ${j.joins} joins, ${j.joinsPerSec}/s, p50 ${j.latency.p50} / p99 ${j.latency.p99} ms, errors ${j.errors} ${j.firstError ?? ''}`)
          if (j.errors > 0) throw new Error(`${j.errors} joins failed`)
        })
      }
      if (options.scenarios.includes('idle')) {
        await scenario('idle', async () => {
          const curve = await idleCurve(ctx, options.idleSizes, options.idleRoomSize)
          out.idleCurve = curve
          for (const p of curve.points) if (p.alive < p.connections) throw new Error(`idle ${p.connections}: only ${p.alive} still open`)
        })
      }
    } finally {
      await stopServer(server)
    }
  }
} finally {
  await stopWorkers(workers)
  await database.cleanup()
}
const dir = resolve(ROOT, options.outDir)
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'colyseus-try.json'), `${JSON.stringify(results, null, 2)}\n`)
log(`\nwrote ${join(dir, 'colyseus-try.json')}; ${failed} scenario(s) failed`)
process.exitCode = failed > 0 ? 1 : 0
