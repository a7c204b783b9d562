/**
 * `npm run bench`: our server, a bare `ws` server and a Socket.IO server, one at a time, each in its own
 * process on 127.0.0.1, driven by load-generator processes; prints a markdown table and writes
 * bench/results/latest.{md,json} (`--quick`: quick.{md,json}). `--help` lists the flags.
 *
 * Contract: every child process is killed before this process exits, whether the run succeeded, failed or
 * was interrupted, and the temporary database is dropped. Exits 1 when any scenario failed.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { basename, join, resolve } from 'node:path'
import type { TargetKind } from './lib/clients.js'
import { benchCharts } from './lib/bench-charts.js'
import { ClusterBench } from './lib/cluster.js'
import { buildFloor, runFloor, type FloorRun } from './lib/floor.js'
import { parseOptions, type Options, type RoomShape, type Scenario } from './lib/options.js'
import { killAllChildren, ROOT, versionOf } from './lib/proc.js'
import { bottlenecks, checkTargets, renderMarkdown, type BenchResults, type FloorResults, type Machine, type TargetResults } from './lib/report.js'
import type { RpcClient } from './lib/rpc.js'
import { startWorkers, stopWorkers } from './lib/workers.js'
import { fanout, idleCurve, joinRuns, rest, roomSizeCurve, saturation, syncHzFor, type Context } from './lib/scenarios.js'
import { prepareDatabase, settle, startServer, stopServer, TARGET_LABELS, type DatabaseSetup, type RunningServer } from './lib/targets.js'

const log = (line: string): void => { console.log(line) }
/** Dropped on every way out, signals included. */
let database: DatabaseSetup | undefined

function machine (): Machine {
  const model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown'
  return {
    cpus: cpus().length,
    cpuModel: model,
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
    loadAverageAtStart: loadavg(),
    ...cpuPressure()
  }
}

function cpuPressure (): { cpuPressureAtStart?: number } {
  try {
    const match = /some avg10=[\d.]+ avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))
    return match === null ? {} : { cpuPressureAtStart: Number(match[1]) }
  } catch {
    return {}
  }
}

async function runTarget (kind: TargetKind, options: Options, workers: RpcClient[], database: DatabaseSetup): Promise<TargetResults> {
  const results: TargetResults = { kind, fanout: [], errors: {} }
  const label = TARGET_LABELS[kind]
  const started = performance.now()
  log(`\n== ${label} ==`)
  let server: RunningServer
  try {
    server = await startServer(kind, options, database)
  } catch (err) {
    results.errors.start = (err as Error).message
    log(`  could not start: ${(err as Error).message}`)
    return results
  }
  log(`  listening on 127.0.0.1:${server.port} (pid ${server.pid}), ready after ${((performance.now() - started) / 1000).toFixed(1)} s`)
  const ctx: Context = { server, workers, options, postgres: database.env.DATABASE_URL !== undefined, log }
  await Promise.all(workers.map(async (w) => await w.call('target', { kind, port: server.port })))
  const scenario = async (name: string, run: () => Promise<void>): Promise<void> => {
    const t0 = performance.now()
    try {
      await run()
    } catch (err) {
      results.errors[name] = (err as Error).message
      log(`  ${name}: FAILED: ${(err as Error).message}`)
    } finally {
      await Promise.all(workers.map(async (w) => await w.call('closeAll').catch(() => {})))
      // --quick only proves the bench works: it does not wait for our server to write the departures.
      if (!options.quick) await settle(server).catch(() => {})
      log(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    }
  }
  const wanted = (s: Scenario): boolean => options.scenarios.includes(s)
  try {
    if (wanted('fanout')) {
      for (const shape of options.fanout) {
        await scenario(`fanout ${shape.rooms}x${shape.viewers}`, async () => {
          const f = await fanout(ctx, shape)
          results.fanout.push(f)
          log(`  fan-out ${shape.rooms}x${shape.viewers}: p50 ${f.latency.p50} / p95 ${f.latency.p95} / p99 ${f.latency.p99} / max ${f.latency.max} ms, ${f.deliveriesPerSec} deliveries/s (${(f.deliveredRatio * 100).toFixed(1)} %), server CPU ${f.serverCpu} %, RSS ${f.serverRssMb} MB, generator CPU ${f.generatorCpu.join('+')} %`)
        })
      }
    }
    if (wanted('roomsize')) {
      await scenario('room-size curve', async () => {
        log(`  room-size curve at ${options.roomSizeRate} deliveries/s:`)
        results.roomSize = await roomSizeCurve(ctx, options.roomSizeShapes, options.roomSizeRate, options.chatHz, options.roomSizeSeconds)
      })
    }
    if (wanted('saturation')) {
      await scenario('saturation', async () => {
        log(`  saturation ${options.saturation.rooms}x${options.saturation.viewers}:`)
        results.saturation = await saturation(ctx)
        const best = results.saturation.best
        log(`  saturation: best ${best === null ? 'none' : `${best.deliveriesPerSec} deliveries/s at ${best.syncHz} Hz/room (p99 ${best.p99} ms)`}`)
      })
    }
    if (wanted('join')) {
      await scenario('join storm', async () => {
        const runs = await joinRuns(ctx, options.joinRuns)
        results.joinRuns = runs
        // The table's join rows show the run whose p99 is the median one.
        const sorted = [...runs.runs].sort((a, b) => a.latency.p99 - b.latency.p99)
        results.join = sorted[Math.floor((sorted.length - 1) / 2)]
        log(`  join storm, ${runs.runs.length} runs: p99 ${runs.p99s.join(' / ')} ms, median ${runs.median.p99} ms; median ${runs.median.joinsPerSec} joins/s`)
        const errors = runs.runs.reduce((a, r) => a + r.errors, 0)
        if (errors > 0) throw new Error(`${errors} joins failed: ${runs.runs.find((r) => r.firstError !== undefined)?.firstError ?? ''}`)
      })
    }
    if (wanted('idle')) {
      await scenario('idle', async () => {
        // A fresh server per size: RSS does not shrink back after thousands of sockets closed.
        const curve = await idleCurve(ctx, options.idleSizes, options.idleRoomSize, async () => {
          await stopServer(server)
          server = await startServer(kind, options, database)
          ctx.server = server
          return server
        })
        results.idleCurve = curve
        results.idle = curve.points.reduce((a, b) => (b.connections > a.connections ? b : a))
        for (const i of curve.points) log(`  idle ${i.connections}: heap ${i.heapPerConnKb} KB/conn, RSS ${i.rssPerConnKb} KB/conn (heap ${i.before.heapUsedMb} -> ${i.after.heapUsedMb} MB), ${i.alive} still open`)
      })
    }
    if (wanted('rest')) {
      await scenario('rest', async () => {
        const r = await rest(ctx, kind)
        results.rest = r
        if ('skipped' in r) log(`  rest: skipped (${r.skipped})`)
        else {
          log(`  rest: POST /rooms ${r.post.rps} req/s p99 ${r.post.p99} ms (non-2xx ${r.post.non2xx}); GET /rooms/{id} ${r.get.rps} req/s p99 ${r.get.p99} ms (non-2xx ${r.get.non2xx})`)
          if (r.post.non2xx + r.get.non2xx + r.post.errors + r.get.errors > 0) throw new Error(`REST answered ${r.post.non2xx + r.get.non2xx} non-2xx and ${r.post.errors + r.get.errors} errors`)
        }
      })
    }
  } finally {
    await stopServer(server)
    log(`  ${label} done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  }
  return results
}

/**
 * The kernel floor (bench/floor/floor.c) on the same fan-out shapes and room-size points as the servers, with
 * the same receivers: what one write() per delivery costs on this machine, in this run.
 */
async function runFloorScenarios (options: Options, workers: RpcClient[]): Promise<FloorResults> {
  log('\n== kernel floor (C, one write() per delivery) ==')
  const build = buildFloor(resolve(ROOT, options.outDir, 'bin'))
  const floor: FloorResults = { build, fanout: [], roomSize: [], roomSizeRate: options.roomSizeRate, errors: {} }
  if ('skipped' in build) {
    log(`  skipped: ${build.skipped}`)
    return floor
  }
  log(`  built with ${build.compiler}`)
  const run = async (name: string, shape: RoomShape, syncHz: number, seconds: number): Promise<FloorRun | undefined> => {
    try {
      const r = await runFloor({ binary: build.binary, rooms: shape.rooms, viewers: shape.viewers, syncHz, chatHz: options.chatHz, seconds, workers, nice: options.nice, log })
      log(`  ${name} ${shape.rooms}x${shape.viewers} at ${syncHz.toFixed(1)} Hz: ${r.deliveriesPerSec} deliveries/s (${(r.deliveredRatio * 100).toFixed(1)} %), ${r.usPerDelivery} µs/delivery (user ${r.userUsPerDelivery}, kernel ${r.sysUsPerDelivery}), p99 ${r.latency.p99} ms`)
      return r
    } catch (err) {
      floor.errors[`${name} ${shape.rooms}x${shape.viewers}`] = (err as Error).message
      log(`  ${name} ${shape.rooms}x${shape.viewers}: FAILED: ${(err as Error).message}`)
      return undefined
    } finally {
      await Promise.all(workers.map(async (w) => await w.call('closeAll').catch(() => {})))
    }
  }
  if (options.scenarios.includes('fanout')) {
    for (const shape of options.fanout) {
      const r = await run('fan-out', shape, options.syncHz, options.fanoutSeconds)
      if (r !== undefined) floor.fanout.push(r)
    }
  }
  if (options.scenarios.includes('roomsize')) {
    for (const shape of options.roomSizeShapes) {
      const r = await run('room size', shape, syncHzFor(shape, options.roomSizeRate, options.chatHz), options.roomSizeSeconds)
      if (r !== undefined) floor.roomSize.push(r)
    }
  }
  return floor
}

async function main (): Promise<number> {
  const options = parseOptions(process.argv.slice(2))
  if (options.render !== undefined) return render(options.render)
  const startedAt = new Date()
  const t0 = performance.now()
  const deadline = setTimeout(() => {
    console.error(`bench: still running after ${options.deadlineMinutes} minutes; giving up`)
    killAllChildren()
    process.exit(1)
  }, options.deadlineMinutes * 60_000)
  deadline.unref()

  const db = await prepareDatabase()
  database = db
  let workers: RpcClient[] = []
  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    quick: options.quick,
    machine: machine(),
    database: db.description,
    versions: { ws: versionOf('ws'), 'socket.io': versionOf('socket.io'), fastify: versionOf('fastify'), autocannon: versionOf('autocannon') },
    options,
    targets: {},
    checks: [],
    bottlenecks: []
  }
  const targetsLine = options.scenarios.every((s) => s === 'cluster') ? 'ours and Socket.IO: 1 process, and 1, 2, 3 nodes on one Redis' : options.targets.map((t) => TARGET_LABELS[t]).join(', ')
  log(`bench${options.quick ? ' --quick' : ''}: ${targetsLine}; ${options.scenarios.join(', ')}; database: ${db.description}`)
  try {
    if (options.scenarios.some((s) => s !== 'cluster')) {
      workers = startWorkers(options.genProcs, options.nice)
      for (const kind of options.targets) results.targets[kind] = await runTarget(kind, options, workers, db)
      if (options.floor && (options.scenarios.includes('fanout') || options.scenarios.includes('roomsize'))) {
        results.floor = await runFloorScenarios(options, workers)
      }
    }
    if (options.scenarios.includes('cluster')) {
      log('\n== cluster: ours and Socket.IO, 1 process and 1–3 nodes on one Redis; kill -9 failovers ==')
      const started = performance.now()
      if (db.env.DATABASE_URL === undefined) {
        log('  skipped: cluster mode needs PostgreSQL (set DATABASE_URL)')
      } else {
        results.cluster = await new ClusterBench(options, options.redisUrl, log).run().catch((err: unknown) => ({
          redisVersion: '?', redisPid: -1, adapterVersion: '?', fanout: [], failover: [], errors: { cluster: (err as Error).message }
        }))
      }
      log(`  cluster done in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    }
  } finally {
    await stopWorkers(workers)
    if (database === db) {
      database = undefined
      await db.cleanup()
    }
  }
  results.machine.loadAverageAtEnd = loadavg()
  results.durationSeconds = (performance.now() - t0) / 1000
  results.checks = checkTargets(results)
  results.bottlenecks = bottlenecks(results)
  const outDir = resolve(ROOT, options.outDir)
  mkdirSync(outDir, { recursive: true })
  // Only the cluster scenario (`npm run bench:cluster`): its own file, so that latest.* keeps the full run.
  const base = options.quick ? 'quick' : options.scenarios.every((s) => s === 'cluster') ? 'cluster' : 'latest'
  const markdown = writeOutputs(results, join(outDir, `${base}.json`))
  log(`\n${markdown}`)
  log(`written to ${join(options.outDir, `${base}.md`)} and ${base}.json in ${results.durationSeconds.toFixed(1)} s`)
  const failed = Object.values(results.targets).some((t) => Object.keys(t.errors).length > 0) || Object.keys(results.cluster?.errors ?? {}).length > 0 || Object.keys(results.floor?.errors ?? {}).length > 0
  return failed ? 1 : 0
}

/** Rewrites FILE.md from FILE.json (after a change of the report's layout), recomputing targets and bottlenecks. */
function render (file: string): number {
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults
  results.checks = checkTargets(results)
  results.bottlenecks = bottlenecks(results)
  log(writeOutputs(results, file))
  return 0
}

/**
 * Writes FILE.json, its charts (FILE-<curve>.svg, drawn from that JSON) and FILE.md, which shows them;
 * returns the markdown.
 */
function writeOutputs (results: BenchResults, jsonFile: string): string {
  const stem = jsonFile.replace(/\.json$/, '')
  const charts = benchCharts(results)
  const images = charts.map((c) => {
    const file = `${stem}-${c.name}.svg`
    writeFileSync(file, c.svg)
    return `![${c.title}](${basename(file)})`
  })
  const markdown = renderMarkdown(results) + (images.length === 0 ? '' : `\n## Curves\n\n${images.join('\n\n')}\n`)
  writeFileSync(`${stem}.md`, `${markdown}\n`)
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`)
  return markdown
}

process.on('exit', killAllChildren)
// A closed pipe (`npm run bench | head`) must not skip the cleanup.
process.stdout.on('error', () => {})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`bench: ${signal}; stopping every child process`)
    killAllChildren()
    const cleanup = database?.cleanup() ?? Promise.resolve()
    database = undefined
    const timer = setTimeout(() => process.exit(130), 5000)
    void cleanup.finally(() => {
      clearTimeout(timer)
      process.exit(130)
    })
  })
}

main().then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  console.error('bench failed:', err)
  killAllChildren()
  process.exitCode = 1
})
