/** Join storm: joins into existing rooms with a fixed number in flight. */
import { loadavg } from 'node:os'
import { Histogram, type HistogramJson, type Summary } from '../histogram.js'
import { CpuMeter, pidsNamed } from '../proc.js'
import { settle } from '../targets.js'
import { generatorMeter, type Context } from './context.js'

export interface JoinResult {
  joins: number
  errors: number
  firstError?: string
  rooms: number
  concurrency: number
  joinsPerSec: number
  latency: Summary
  serverCpu: number
  databaseCpu: number | null
  generatorCpu: number[]
  /** Server CPU time per join, in microseconds (its CPU percentage over the storm, per join per second). */
  serverUsPerJoin: number
  /** The database backends' CPU time per join, in microseconds (null: not measured, not our server on Postgres). */
  databaseUsPerJoin: number | null
  /** The load average when the storm started (wall-clock latency on a shared machine depends on it). */
  loadAverage: number[]
}

export interface JoinRunsResult {
  /** Every run's result, in order. */
  runs: JoinResult[]
  /** The median over the runs of each figure (p50 and p99 in ms). */
  median: { p50: number, p99: number, joinsPerSec: number, serverUsPerJoin: number }
  /** Each run's p99, in ms, in run order. */
  p99s: number[]
}

const perJoin = (cpuPct: number, perSec: number): number => perSec > 0 ? Math.round((cpuPct / 100) * 1e6 / perSec * 10) / 10 : NaN

/** Development hooks (bench/lib/scenarios/join-try.ts): called right before and right after the timed storm. */
export interface StormHooks {
  before: () => Promise<void>
  after: () => Promise<void>
}

export async function joinStorm (ctx: Context, hooks?: StormHooks): Promise<JoinResult> {
  const { options } = ctx
  const rooms = Math.ceil(options.joins / options.joinRoomSize)
  const w0 = ctx.workers[0]!
  const roomIds = await w0.call<string[]>('hosts', { count: rooms, prefix: 'storm', concurrency: 50 }, 600_000)
  await w0.call('spare', { count: options.joins, prefix: 'storm', concurrency: 100 }, 600_000)
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const dbCpu = ctx.postgres && ctx.server.kind === 'ours' ? new CpuMeter(() => pidsNamed('postgres')) : undefined
  const genCpu = generatorMeter(ctx)
  const loadAverage = loadavg().map((l) => Math.round(l * 100) / 100)
  await hooks?.before()
  serverCpu.start()
  dbCpu?.start()
  for (const m of genCpu) m.start()
  const r = await w0.call<{ latency: HistogramJson, durationMs: number, joins: number, errors: number, firstError?: string }>('joinStorm', { roomIds, concurrency: options.joinConcurrency }, 900_000)
  const joinsPerSec = Math.round(r.joins / (r.durationMs / 1000))
  const server = serverCpu.stop()
  const database = dbCpu === undefined ? null : dbCpu.stop()
  const generatorCpu = genCpu.map((m) => m.stop())
  await hooks?.after()
  return {
    joins: r.joins,
    errors: r.errors,
    ...(r.firstError === undefined ? {} : { firstError: r.firstError }),
    rooms,
    concurrency: options.joinConcurrency,
    joinsPerSec,
    latency: Histogram.from(r.latency).summaryMs(),
    serverCpu: server,
    databaseCpu: database,
    generatorCpu,
    serverUsPerJoin: perJoin(server, joinsPerSec),
    databaseUsPerJoin: database === null ? null : perJoin(database, joinsPerSec),
    loadAverage
  }
}

/**
 * The join storm `runs` times, each on fresh rooms and spare connections; between runs every worker closes
 * its connections and the server settles (its departures written), so that no run overlaps the previous
 * one's leftovers. The caller closes and settles after the last run, as after any scenario.
 */
export async function joinRuns (ctx: Context, runs: number, around?: StormHooks): Promise<JoinRunsResult> {
  const results: JoinResult[] = []
  for (let i = 0; i < runs; i++) {
    if (i > 0) {
      await Promise.all(ctx.workers.map(async (w) => await w.call('closeAll')))
      await settle(ctx.server)
    }
    const r = await joinStorm(ctx, around)
    ctx.log(`  join storm ${i + 1}/${runs}: ${r.joins} joins, ${r.joinsPerSec} joins/s, p50 ${r.latency.p50} / p99 ${r.latency.p99} ms, server ${r.serverUsPerJoin} µs/join, errors ${r.errors} (load ${r.loadAverage.join(' ')})`)
    results.push(r)
  }
  return {
    runs: results,
    median: {
      p50: median(results.map((r) => r.latency.p50)),
      p99: median(results.map((r) => r.latency.p99)),
      joinsPerSec: median(results.map((r) => r.joinsPerSec)),
      serverUsPerJoin: median(results.map((r) => r.serverUsPerJoin))
    },
    p99s: results.map((r) => r.latency.p99)
  }
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median (values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
