/**
 * The five measurements, each run against one server by the load-generator workers. Every scenario leaves
 * no connection behind (the caller closes and settles after each).
 */
import type { TargetKind } from './clients.js'
import { Histogram, type HistogramJson, type Summary } from './histogram.js'
import { memoryAfterGc } from './inspector.js'
import type { Options, RoomShape } from './options.js'
import { CpuMeter, pidsNamed, rssBytes } from './proc.js'
import type { RpcClient } from './rpc.js'
import { metricsGauges, type RunningServer } from './targets.js'

export interface Context {
  server: RunningServer
  workers: RpcClient[]
  options: Options
  /** True when our server runs on Postgres (its backends' CPU is measured too). */
  postgres: boolean
  log: (line: string) => void
}

export interface FanoutResult {
  rooms: number
  viewers: number
  seconds: number
  syncHz: number
  chatHz: number
  sent: { syncs: number, chats: number }
  expected: number
  received: number
  deliveredRatio: number
  deliveriesPerSec: number
  latency: Summary
  syncLatency: Summary
  chatLatency: Summary
  sendLag: Summary
  serverCpu: number
  /** Server CPU time per delivery, in microseconds: what a delivery costs, whatever else the machine runs. */
  serverUsPerDelivery: number
  serverRssMb: number
  generatorCpu: number[]
}

const usPerDelivery = (cpuPct: number, perSec: number): number => perSec > 0 ? Math.round((cpuPct / 100) * 1e6 / perSec * 100) / 100 : NaN

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024 * 10) / 10

function generatorMeter (ctx: Context): CpuMeter[] {
  return ctx.workers.map((w) => new CpuMeter(() => [w.child.pid ?? -1]))
}

/** Hosts (one per room) on the first worker; viewers spread over all workers. Returns the room ids. */
async function populate (ctx: Context, shape: RoomShape, prefix: string): Promise<string[]> {
  const [first] = ctx.workers
  const roomIds = await first!.call<string[]>('hosts', { count: shape.rooms, prefix, concurrency: 50 }, 600_000)
  const g = ctx.workers.length
  await Promise.all(ctx.workers.map(async (worker, j) => {
    const assignments = roomIds.map((roomId) => {
      const base = Math.floor(shape.viewers / g)
      const count = base + (j < shape.viewers % g ? 1 : 0)
      const from = j * base + Math.min(j, shape.viewers % g)
      return { roomId, count, from }
    }).filter((a) => a.count > 0)
    await worker.call('viewers', { assignments, prefix, concurrency: 50 }, 900_000)
  }))
  return roomIds
}

/** Timed frames received since the last reset; with `stale`, those of earlier runs too. */
async function received (ctx: Context, stale = false): Promise<number> {
  const stats = await Promise.all(ctx.workers.map(async (w) => await w.call<{ received: number, stale: number }>('stats')))
  return stats.reduce((sum, s) => sum + s.received + (stale ? s.stale : 0), 0)
}

/** Waits until no timed frame has arrived for `quietMs` (a backlog of an overloaded step drains), at most `maxMs`. */
async function quiesce (ctx: Context, quietMs = 500, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs
  let last = await received(ctx, true)
  let quietSince = Date.now()
  while (Date.now() < deadline) {
    await sleep(100)
    const now = await received(ctx, true)
    if (now !== last) {
      last = now
      quietSince = Date.now()
    } else if (Date.now() - quietSince >= quietMs) {
      return
    }
  }
}

/** One timed run at `syncHz` on rooms already populated; drains until everything sent has arrived or 3 s passed. */
async function measure (ctx: Context, shape: RoomShape, syncHz: number, chatHz: number, seconds: number): Promise<FanoutResult> {
  await Promise.all(ctx.workers.map(async (w) => await w.call('reset')))
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const genCpu = generatorMeter(ctx)
  serverCpu.start()
  for (const m of genCpu) m.start()
  const driven = await ctx.workers[0]!.call<{ syncs: number, chats: number, lag: HistogramJson }>('drive', { syncHz, chatHz, durationMs: seconds * 1000 }, seconds * 1000 + 60_000)
  const serverCpuPct = serverCpu.stop()
  const generatorCpu = genCpu.map((m) => m.stop())
  const expected = driven.syncs * shape.viewers + driven.chats * (shape.viewers + 1)
  const drainUntil = Date.now() + 3000
  let got = await received(ctx)
  while (got < expected && Date.now() < drainUntil) {
    await sleep(50)
    got = await received(ctx)
  }
  const collected = await Promise.all(ctx.workers.map(async (w) => await w.call<{ sync: HistogramJson, chat: HistogramJson, received: number }>('collect')))
  const sync = new Histogram()
  const chat = new Histogram()
  for (const c of collected) {
    sync.merge(c.sync)
    chat.merge(c.chat)
  }
  const all = new Histogram().merge(sync).merge(chat)
  return {
    rooms: shape.rooms,
    viewers: shape.viewers,
    seconds,
    syncHz,
    chatHz,
    sent: { syncs: driven.syncs, chats: driven.chats },
    expected,
    received: all.count,
    deliveredRatio: expected === 0 ? 1 : Math.round((all.count / expected) * 10000) / 10000,
    deliveriesPerSec: Math.round(all.count / seconds),
    latency: all.summaryMs(),
    syncLatency: sync.summaryMs(),
    chatLatency: chat.summaryMs(),
    sendLag: Histogram.from(driven.lag).summaryMs(),
    serverCpu: serverCpuPct,
    serverUsPerDelivery: usPerDelivery(serverCpuPct, all.count / seconds),
    serverRssMb: mb(rssBytes(ctx.server.pid)),
    generatorCpu
  }
}

export async function fanout (ctx: Context, shape: RoomShape): Promise<FanoutResult> {
  await populate(ctx, shape, `fan${shape.rooms}x${shape.viewers}`)
  return await measure(ctx, shape, ctx.options.syncHz, ctx.options.chatHz, ctx.options.fanoutSeconds)
}

export interface SaturationStep {
  syncHz: number
  deliveriesPerSec: number
  p99: number
  deliveredRatio: number
  serverCpu: number
  generatorCpu: number[]
  sendLagP99: number
  serverUsPerDelivery: number
  pass: boolean
}

export interface SaturationResult {
  rooms: number
  viewers: number
  p99LimitMs: number
  best: SaturationStep | null
  firstFailure: SaturationStep | null
  /**
   * Deliveries one fully busy core would make at the cost per delivery measured in the busiest step that
   * delivered everything: a capacity that does not depend on what else the shared machine was running.
   */
  capacityPerCore: number | null
  steps: SaturationStep[]
}

/** Doubles the sync rate per room until p99 passes the line (or deliveries go missing), then bisects. */
export async function saturation (ctx: Context): Promise<SaturationResult> {
  const { options } = ctx
  const shape = options.saturation
  await populate(ctx, shape, `sat${shape.rooms}x${shape.viewers}`)
  const steps: SaturationStep[] = []
  const step = async (syncHz: number): Promise<SaturationStep> => {
    const r = await measure(ctx, shape, syncHz, options.chatHz, options.saturationStepSeconds)
    const s: SaturationStep = {
      syncHz: Math.round(syncHz * 10) / 10,
      deliveriesPerSec: r.deliveriesPerSec,
      p99: r.latency.p99,
      deliveredRatio: r.deliveredRatio,
      serverCpu: r.serverCpu,
      generatorCpu: r.generatorCpu,
      sendLagP99: r.sendLag.p99,
      serverUsPerDelivery: r.serverUsPerDelivery,
      pass: r.latency.p99 <= options.saturationP99Ms && r.deliveredRatio >= 0.99
    }
    steps.push(s)
    ctx.log(`    ${s.syncHz} Hz/room: ${s.deliveriesPerSec} deliveries/s, p99 ${s.p99} ms, delivered ${(s.deliveredRatio * 100).toFixed(1)} %, server CPU ${s.serverCpu} % (${s.serverUsPerDelivery} µs/delivery), generator CPU ${s.generatorCpu.join('+')} % ${s.pass ? 'ok' : 'OVER'}`)
    await quiesce(ctx)
    return s
  }
  // On a shared machine one step can fail from someone else's burst: a failing step is run once more.
  const confirmedStep = async (syncHz: number): Promise<SaturationStep> => {
    const s = await step(syncHz)
    return s.pass || !options.saturationRetry ? s : await step(syncHz)
  }
  // Doubling goes on past a failing rate and stops after two failing rates in a row, never below
  // saturationMinHz: on a shared machine a low rate can fail from someone else's burst, and the capacity
  // comparison wants every server measured at the same busy rates.
  let hz = options.syncHz
  let best: SaturationStep | null = null
  let failure: SaturationStep | null = null
  let failuresInARow = 0
  for (let i = 0; i < options.saturationMaxSteps && (failuresInARow < 2 || hz <= options.saturationMinHz); i++) {
    const s = await confirmedStep(hz)
    if (s.pass) {
      best = s
      failure = null
      failuresInARow = 0
    } else {
      failure ??= s
      failuresInARow++
    }
    hz *= options.saturationFactor
  }
  for (let i = 0; i < options.saturationRefine && best !== null && failure !== null; i++) {
    const s = await confirmedStep(Math.sqrt(best.syncHz * failure.syncHz))
    if (s.pass) best = s
    else failure = s
  }
  if (best !== null) {
    // The highest passing throughput (a refinement step may pass with fewer deliveries than an earlier one).
    best = steps.filter((s) => s.pass).reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a), best)
  }
  const complete = steps.filter((s) => s.deliveredRatio >= 0.99 && s.serverCpu > 0)
  const busiest = complete.reduce<SaturationStep | null>((a, b) => (a === null || b.serverCpu > a.serverCpu ? b : a), null)
  const capacityPerCore = busiest === null ? null : Math.round(busiest.deliveriesPerSec / (busiest.serverCpu / 100))
  return { rooms: shape.rooms, viewers: shape.viewers, p99LimitMs: options.saturationP99Ms, best, firstFailure: failure, capacityPerCore, steps }
}

export interface IdleResult {
  connections: number
  alive: number
  roomSize: number
  heapPerConnKb: number
  rssPerConnKb: number
  before: { heapUsedMb: number, rssMb: number }
  after: { heapUsedMb: number, rssMb: number }
  /** Our server's own gauges after the connections settled (cross-check; baselines have none). */
  serverMetrics?: Record<string, number>
  heldMs: number
}

export async function idle (ctx: Context): Promise<IdleResult> {
  const { options, server } = ctx
  if (server.inspector === undefined) throw new Error('no inspector URL in the server output; cannot read its heap')
  const before = await memoryAfterGc(server.inspector)
  const rooms = Math.ceil(options.idle / options.idleRoomSize)
  const perRoom = options.idleRoomSize - 1
  // The last room gets what is left so that exactly `idle` connections are open.
  const viewers = options.idle - rooms
  const roomIds = await ctx.workers[0]!.call<string[]>('hosts', { count: rooms, prefix: 'idle', concurrency: 50 }, 900_000)
  const g = ctx.workers.length
  await Promise.all(ctx.workers.map(async (worker, j) => {
    const assignments: Array<{ roomId: string, count: number, from: number }> = []
    roomIds.forEach((roomId, r) => {
      const inRoom = Math.min(perRoom, viewers - r * perRoom)
      if (inRoom <= 0) return
      const base = Math.floor(inRoom / g)
      const count = base + (j < inRoom % g ? 1 : 0)
      if (count > 0) assignments.push({ roomId, count, from: j * base + Math.min(j, inRoom % g) })
    })
    await worker.call('viewers', { assignments, prefix: 'idle', concurrency: 100 }, 1_800_000)
  }))
  const heldMs = Math.round(options.heartbeatMs * 1.5)
  await sleep(heldMs)
  const after = await memoryAfterGc(server.inspector)
  const alive = (await Promise.all(ctx.workers.map(async (w) => await w.call<number>('alive')))).reduce((a, b) => a + b, 0)
  const serverMetrics = await metricsGauges(server, ['ws_connections', 'room_participants', 'nodejs_heap_size_used_bytes', 'process_resident_memory_bytes'])
  const kb = (bytes: number): number => Math.round(bytes / 1024 * 100) / 100
  return {
    connections: options.idle,
    alive,
    roomSize: options.idleRoomSize,
    heapPerConnKb: kb((after.heapUsed - before.heapUsed) / options.idle),
    rssPerConnKb: kb((after.rss - before.rss) / options.idle),
    before: { heapUsedMb: mb(before.heapUsed), rssMb: mb(before.rss) },
    after: { heapUsedMb: mb(after.heapUsed), rssMb: mb(after.rss) },
    ...(serverMetrics === undefined ? {} : { serverMetrics }),
    heldMs
  }
}

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
}

export async function joinStorm (ctx: Context): Promise<JoinResult> {
  const { options } = ctx
  const rooms = Math.ceil(options.joins / options.joinRoomSize)
  const w0 = ctx.workers[0]!
  const roomIds = await w0.call<string[]>('hosts', { count: rooms, prefix: 'storm', concurrency: 50 }, 600_000)
  await w0.call('spare', { count: options.joins, prefix: 'storm', concurrency: 100 }, 600_000)
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const dbCpu = ctx.postgres && ctx.server.kind === 'ours' ? new CpuMeter(() => pidsNamed('postgres')) : undefined
  const genCpu = generatorMeter(ctx)
  serverCpu.start()
  dbCpu?.start()
  for (const m of genCpu) m.start()
  const r = await w0.call<{ latency: HistogramJson, durationMs: number, joins: number, errors: number, firstError?: string }>('joinStorm', { roomIds, concurrency: options.joinConcurrency }, 900_000)
  return {
    joins: r.joins,
    errors: r.errors,
    ...(r.firstError === undefined ? {} : { firstError: r.firstError }),
    rooms,
    concurrency: options.joinConcurrency,
    joinsPerSec: Math.round(r.joins / (r.durationMs / 1000)),
    latency: Histogram.from(r.latency).summaryMs(),
    serverCpu: serverCpu.stop(),
    databaseCpu: dbCpu === undefined ? null : dbCpu.stop(),
    generatorCpu: genCpu.map((m) => m.stop())
  }
}

export interface RestRun { rps: number, p50: number, p99: number, max: number, total: number, non2xx: number, errors: number }
export interface RestResult {
  connections: number
  seconds: number
  post: RestRun
  get: RestRun
  serverCpu: number
  generatorCpu: number[]
}

export async function rest (ctx: Context, kind: TargetKind): Promise<RestResult | { skipped: string }> {
  if (kind === 'socketio') return { skipped: 'Socket.IO has no REST API; its column is empty' }
  const { options } = ctx
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const genCpu = generatorMeter(ctx)
  serverCpu.start()
  for (const m of genCpu) m.start()
  const r = await ctx.workers[0]!.call<{ post: RestRun, get: RestRun }>('rest', { port: ctx.server.port, durationS: options.restSeconds, connections: options.restConnections }, options.restSeconds * 2000 + 120_000)
  return { connections: options.restConnections, seconds: options.restSeconds, ...r, serverCpu: serverCpu.stop(), generatorCpu: genCpu.map((m) => m.stop()) }
}
