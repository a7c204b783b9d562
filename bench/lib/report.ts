/**
 * The results as a markdown table (ours, bare ws, Socket.IO and the ratios), the issue's targets checked
 * against them, and where the load generator rather than a server set the limit.
 */
import type { TargetKind } from './clients.js'
import { renderCluster, type ClusterResults } from './cluster.js'
import type { FloorBuild, FloorRun } from './floor.js'
import { TARGETS, type Options } from './options.js'
import type { FanoutResult, IdleCurveResult, IdleResult, JoinResult, JoinRunsResult, RestResult, RoomSizeResult, SaturationResult, SaturationStep } from './scenarios.js'
import { TARGET_LABELS } from './targets.js'

export interface TargetResults {
  kind: TargetKind
  fanout: FanoutResult[]
  /** CPU per delivery against room size, at one delivery rate. */
  roomSize?: RoomSizeResult
  saturation?: SaturationResult
  /** The largest point of the idle curve (the table's idle rows). */
  idle?: IdleResult
  idleCurve?: IdleCurveResult
  /** The run of `joinRuns` whose p99 is the median one. */
  join?: JoinResult
  joinRuns?: JoinRunsResult
  rest?: RestResult | { skipped: string }
  errors: Record<string, string>
}

export interface Machine {
  cpus: number
  cpuModel: string
  memoryGb: number
  node: string
  kernel: string
  loadAverageAtStart: number[]
  loadAverageAtEnd?: number[]
  /** /proc/pressure/cpu `some avg60`: percent of the last minute in which a runnable task waited for a CPU. */
  cpuPressureAtStart?: number
}

export interface BenchResults {
  startedAt: string
  durationSeconds: number
  quick: boolean
  machine: Machine
  database: string
  versions: Record<string, string>
  options: Options
  targets: Partial<Record<TargetKind, TargetResults>>
  /** The kernel floor (bench/floor/floor.c): the same fan-outs and room-size points, one write() per delivery. */
  floor?: FloorResults
  /** The cluster scenario (two nodes on one Redis, and kill -9 failovers), when it ran. */
  cluster?: ClusterResults
  checks: Check[]
  bottlenecks: string[]
}

export interface FloorResults {
  build: FloorBuild
  fanout: FloorRun[]
  roomSize: FloorRun[]
  roomSizeRate?: number
  errors: Record<string, string>
}

export interface Check { target: string, value: string, met: boolean | null }

type Getter = (t: TargetResults) => number | undefined
type Better = 'higher' | 'lower'

/** Every server the bench can run, in the table's column order. */
const KINDS = TARGETS
const FLOOR_LABEL = 'kernel floor (C)'
const BUSY = 85

function fmt (v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '–'
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function ratio (a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || Number.isNaN(a) || Number.isNaN(b) || b === 0) return '–'
  return `${(a / b).toFixed(2)}x`
}

function shapeLabel (f: { rooms: number, viewers: number }): string {
  return `${f.rooms}×${f.viewers}`
}

/** A column of the table: a server's results, or the kernel floor's runs seen as a server's. */
interface Column { key: string, label: string, results: TargetResults }

/** The floor's runs in a server's shape (CPU figures, latency, deliveries; no RSS, no scenarios it cannot run). */
function floorColumn (floor: FloorResults | undefined): Column | undefined {
  if (floor === undefined || ('skipped' in floor.build)) return undefined
  const asFanout = (r: FloorRun): FanoutResult => ({
    rooms: r.rooms,
    viewers: r.viewers,
    seconds: r.seconds,
    syncHz: r.syncHz,
    chatHz: r.chatHz,
    sent: { syncs: 0, chats: 0 },
    expected: r.expected,
    received: r.received,
    deliveredRatio: r.deliveredRatio,
    deliveriesPerSec: r.deliveriesPerSec,
    latency: r.latency,
    syncLatency: r.syncLatency,
    chatLatency: r.chatLatency,
    sendLag: r.latency,
    serverCpu: r.cpuPct,
    serverUsPerDelivery: r.usPerDelivery,
    serverUserUsPerDelivery: r.userUsPerDelivery,
    serverSystemUsPerDelivery: r.sysUsPerDelivery,
    serverRssMb: NaN,
    generatorCpu: r.receiverCpu
  })
  const results = {
    kind: 'floor' as unknown as TargetKind,
    fanout: floor.fanout.map(asFanout),
    ...(floor.roomSize.length === 0 ? {} : { roomSize: { deliveriesPerSec: floor.roomSizeRate ?? NaN, chatHz: floor.roomSize[0]!.chatHz, points: floor.roomSize.map(asFanout) } }),
    errors: floor.errors
  }
  return { key: 'floor', label: FLOOR_LABEL, results }
}

function columnsOf (results: BenchResults): Column[] {
  const columns: Column[] = []
  for (const k of KINDS) {
    const t = results.targets[k]
    if (t !== undefined) columns.push({ key: k, label: TARGET_LABELS[k] ?? k, results: t })
  }
  const floor = floorColumn(results.floor)
  if (floor !== undefined) columns.push(floor)
  return columns
}

export function renderTable (results: BenchResults): string {
  const columns = columnsOf(results)
  const ours = columns.find((c) => c.key === 'ours')
  const others = columns.filter((c) => c.key !== 'ours')
  const rows: string[] = []
  const ratioHeads = ours === undefined ? [] : others.map((c) => `ours ÷ ${c.label}`)
  rows.push(`| measurement | ${columns.map((c) => c.label).join(' | ')} |${ratioHeads.map((h) => ` ${h} |`).join('')}`,
    `|---|${columns.map(() => '--:').join('|')}|${ratioHeads.map(() => '--:|').join('')}`)
  const add = (label: string, get: Getter, better?: Better): void => {
    const values = columns.map((c) => get(c.results))
    if (values.every((v) => v === undefined || Number.isNaN(v))) return
    const oursValue = ours === undefined ? undefined : get(ours.results)
    const ratios = ours === undefined ? [] : others.map((c) => ratio(oursValue, get(c.results)))
    const note = better === undefined ? '' : better === 'higher' ? ' ↑' : ' ↓'
    rows.push(`| ${label}${note} | ${values.map(fmt).join(' | ')} |${ratios.map((r) => ` ${r} |`).join('')}`)
  }
  const targets = results.targets
  const section = (title: string): void => { rows.push(`| **${title}** |${' |'.repeat(columns.length + ratioHeads.length)}`) }

  const shapes = new Map<string, FanoutResult>()
  for (const c of columns) for (const f of c.results.fanout) if (!shapes.has(shapeLabel(f))) shapes.set(shapeLabel(f), f)
  for (const [label, f] of shapes) {
    const pick = (t: TargetResults): FanoutResult | undefined => t.fanout.find((x) => shapeLabel(x) === label)
    section(`Fan-out ${label} (rooms × viewers), sync ${f.syncHz} Hz + chat ${f.chatHz} Hz per room, ${f.seconds} s`)
    add('latency p50 (ms)', (t) => pick(t)?.latency.p50, 'lower')
    add('latency p95 (ms)', (t) => pick(t)?.latency.p95, 'lower')
    add('latency p99 (ms)', (t) => pick(t)?.latency.p99, 'lower')
    add('latency max (ms)', (t) => pick(t)?.latency.max, 'lower')
    add('deliveries/s', (t) => pick(t)?.deliveriesPerSec, 'higher')
    add('delivered (% of sent × members)', (t) => { const r = pick(t)?.deliveredRatio; return r === undefined ? undefined : r * 100 })
    add('server CPU (% of one core)', (t) => pick(t)?.serverCpu, 'lower')
    add('server CPU per delivery (µs)', (t) => pick(t)?.serverUsPerDelivery, 'lower')
    add('… of it in user space (µs)', (t) => pick(t)?.serverUserUsPerDelivery, 'lower')
    add('… of it in the kernel (µs)', (t) => pick(t)?.serverSystemUsPerDelivery, 'lower')
    add('server RSS (MB)', (t) => pick(t)?.serverRssMb, 'lower')
    add('load generator CPU (%)', (t) => sum(pick(t)?.generatorCpu))
  }
  const anySize = columns.map((c) => c.results.roomSize).find((r) => r !== undefined)
  if (anySize !== undefined) {
    section(`CPU per delivery against room size: ${fmt(anySize.deliveriesPerSec)} deliveries/s (syncs to viewers + chat ${anySize.chatHz} Hz to all), ${anySize.points[0]?.seconds ?? '?'} s per point`)
    for (const point of anySize.points) {
      const pick = (t: TargetResults): FanoutResult | undefined => t.roomSize?.points.find((x) => shapeLabel(x) === shapeLabel(point))
      add(`rooms of ${point.viewers} (${shapeLabel(point)}, ${point.syncHz.toFixed(1)} Hz): CPU per delivery (µs)`, (t) => pick(t)?.serverUsPerDelivery, 'lower')
      add('… user space (µs)', (t) => pick(t)?.serverUserUsPerDelivery, 'lower')
      add('… kernel (µs)', (t) => pick(t)?.serverSystemUsPerDelivery, 'lower')
      add('… delivered (%)', (t) => { const r = pick(t)?.deliveredRatio; return r === undefined ? undefined : r * 100 })
      add('… latency p99 (ms)', (t) => pick(t)?.latency.p99, 'lower')
    }
  }
  const anySat = KINDS.map((k) => targets[k]?.saturation).find((s) => s !== undefined)
  if (anySat !== undefined) {
    section(`Saturation ${shapeLabel(anySat)}: sync rate per room doubled (chat stays 1 Hz) until two rates in a row had p99 > ${anySat.p99LimitMs} ms`)
    add(`max deliveries/s with p99 ≤ ${anySat.p99LimitMs} ms`, (t) => t.saturation?.best?.deliveriesPerSec, 'higher')
    add('… at sync rate (Hz per room)', (t) => t.saturation?.best?.syncHz)
    add('… p99 there (ms)', (t) => t.saturation?.best?.p99)
    add('… server CPU there (%)', (t) => t.saturation?.best?.serverCpu)
    add('… load generator CPU there (%)', (t) => sum(t.saturation?.best?.generatorCpu))
    const common = commonRate(results)
    if (common !== undefined) add(`CPU cost at ${common} Hz/room (the busiest rate all kept under the line): deliveries per core-second of server CPU`, (t) => capacityAt(t, common), 'higher')
  }
  const anyCurve = KINDS.map((k) => targets[k]?.idleCurve).find((s) => s !== undefined)
  if (anyCurve !== undefined) {
    section(`Idle connections in rooms of ${anyCurve.roomSize}, heartbeats every ${anyCurve.heartbeatMs} ms, several load-generator processes`)
    for (const { connections } of anyCurve.points) {
      const pick = (t: TargetResults): IdleResult | undefined => t.idleCurve?.points.find((p) => p.connections === connections)
      add(`${connections.toLocaleString('en-US')} connections: heap per connection (KB, after GC)`, (t) => pick(t)?.heapPerConnKb, 'lower')
      add('… RSS per connection (KB)', (t) => pick(t)?.rssPerConnKb, 'lower')
      add('… still open after the hold', (t) => pick(t)?.alive)
    }
  }
  const anyJoin = KINDS.map((k) => targets[k]?.join).find((s) => s !== undefined)
  if (anyJoin !== undefined) {
    const runs = KINDS.map((k) => targets[k]?.joinRuns?.runs.length).find((n) => n !== undefined) ?? 1
    section(`Join storm: ${anyJoin.joins.toLocaleString('en-US')} joins into rooms of 50, ${anyJoin.concurrency} in flight (ours writes each through to ${results.database.startsWith('Postgres') ? 'Postgres' : 'PGlite'}); ${runs} run(s), the median one shown`)
    add('join latency p99, median of the runs (ms)', (t) => t.joinRuns?.median.p99 ?? t.join?.latency.p99, 'lower')
    if (runs > 1) {
      for (let i = 0; i < runs; i++) add(`… run ${i + 1} p99 (ms)`, (t) => t.joinRuns?.runs[i]?.latency.p99, 'lower')
    }
    add('joins/s', (t) => t.join?.joinsPerSec, 'higher')
    add('join latency p50 (ms)', (t) => t.join?.latency.p50, 'lower')
    add('server CPU per join (µs)', (t) => t.join?.serverUsPerJoin, 'lower')
    add('server CPU (%)', (t) => t.join?.serverCpu)
    add('database CPU (%)', (t) => t.join?.databaseCpu ?? undefined)
  }
  const restOf = (t: TargetResults): RestResult | undefined => t.rest !== undefined && !('skipped' in t.rest) ? t.rest : undefined
  const anyRest = KINDS.map((k) => targets[k]).map((t) => (t === undefined ? undefined : restOf(t))).find((r) => r !== undefined)
  if (anyRest !== undefined) {
    section(`REST (autocannon, ${anyRest.connections} connections, ${anyRest.seconds} s each; bare ws column: node:http from memory)`)
    add('POST /rooms req/s', (t) => restOf(t)?.post.rps, 'higher')
    add('POST /rooms p99 (ms)', (t) => restOf(t)?.post.p99, 'lower')
    add('GET /rooms/{id} req/s', (t) => restOf(t)?.get.rps, 'higher')
    add('GET /rooms/{id} p99 (ms)', (t) => restOf(t)?.get.p99, 'lower')
    add('autocannon CPU (%)', (t) => sum(restOf(t)?.generatorCpu))
  }
  return rows.join('\n')
}

/**
 * The highest sync rate at which every server's saturation search stayed under the latency line with
 * everything delivered: the busiest load that all of them handled, where comparing their CPU cost per
 * delivery compares work done, not how each one degrades once overloaded.
 */
function commonRate (results: BenchResults): number | undefined {
  const sets = KINDS.map((k) => results.targets[k]?.saturation).filter((s) => s !== undefined)
    .map((s) => new Set(s.steps.filter((x) => x.pass && x.serverCpu > 0).map((x) => x.syncHz)))
  if (sets.length === 0) return undefined
  const shared = [...sets[0]!].filter((hz) => sets.every((set) => set.has(hz)))
  return shared.length === 0 ? undefined : Math.max(...shared)
}

/** Deliveries per second of server CPU at `hz`, over the passing runs at that rate: a cost, not a latency, so it holds on a busy machine. */
function capacityAt (t: TargetResults, hz: number): number | undefined {
  const runs = t.saturation?.steps.filter((x) => x.syncHz === hz && x.pass && x.serverCpu > 0) ?? []
  if (runs.length === 0) return undefined
  const cpu = runs.reduce((a, x) => a + x.serverCpu, 0)
  const deliveries = runs.reduce((a, x) => a + x.deliveriesPerSec, 0)
  return Math.round(deliveries / (cpu / 100))
}

function sum (values: number[] | undefined): number | undefined {
  return values === undefined ? undefined : Math.round(values.reduce((a, b) => a + b, 0) * 10) / 10
}

/** The issue's targets, each with the number that decides it. */
export function checkTargets (results: BenchResults): Check[] {
  const ours = results.targets.ours
  const bare = results.targets.bare
  const sio = results.targets.socketio
  const checks: Check[] = []
  const sat = (t: TargetResults | undefined): number | undefined => t?.saturation?.best?.deliveriesPerSec
  if (sat(ours) !== undefined && sat(bare) !== undefined) {
    const r = sat(ours)! / sat(bare)!
    checks.push({ target: 'saturation ≥ 0.8x bare ws', value: `${r.toFixed(2)}x (${fmt(sat(ours))} vs ${fmt(sat(bare))} deliveries/s)`, met: r >= 0.8 })
  }
  if (sat(ours) !== undefined && sat(sio) !== undefined) {
    const r = sat(ours)! / sat(sio)!
    checks.push({ target: 'saturation ≥ 1.5x Socket.IO', value: `${r.toFixed(2)}x (${fmt(sat(ours))} vs ${fmt(sat(sio))} deliveries/s)`, met: r >= 1.5 })
  }
  const common = commonRate(results)
  const cap = (t: TargetResults | undefined): number | undefined => t === undefined || common === undefined ? undefined : capacityAt(t, common)
  if (cap(ours) !== undefined && cap(bare) !== undefined && cap(sio) !== undefined) {
    checks.push({
      target: `the same two ratios on CPU cost (deliveries per core-second at ${common ?? '?'} Hz/room)`,
      value: `${(cap(ours)! / cap(bare)!).toFixed(2)}x bare ws, ${(cap(ours)! / cap(sio)!).toFixed(2)}x Socket.IO`,
      met: cap(ours)! / cap(bare)! >= 0.8 && cap(ours)! / cap(sio)! >= 1.5
    })
  }
  const big = ours?.fanout.find((f) => f.rooms === 1 && f.viewers === 1000 && f.syncHz === 4)
  if (big !== undefined) {
    checks.push({ target: 'p99 ≤ 25 ms, 1,000-viewer room at 4 Hz', value: `${fmt(big.latency.p99)} ms`, met: big.latency.p99 <= 25 })
  } else if (ours !== undefined && ours.fanout.length > 0) {
    checks.push({ target: 'p99 ≤ 25 ms, 1,000-viewer room at 4 Hz', value: 'not run at this size (use the full run)', met: null })
  }
  if (ours?.idle !== undefined) {
    checks.push({ target: '≤ 8 KB heap per idle connection', value: `${fmt(ours.idle.heapPerConnKb)} KB`, met: ours.idle.heapPerConnKb <= 8 })
  }
  const floorSize = results.floor?.roomSize ?? []
  for (const viewers of [100, 1000]) {
    const mine = ours?.roomSize?.points.find((p) => p.viewers === viewers)
    const kernel = floorSize.find((p) => p.viewers === viewers && p.rooms === mine?.rooms)
    if (mine === undefined || kernel === undefined) continue
    const r = mine.serverUsPerDelivery / kernel.usPerDelivery
    checks.push({
      target: `CPU per delivery ≤ 1.3x the kernel floor, ${mine.rooms}×${mine.viewers} at ${fmt(ours?.roomSize?.deliveriesPerSec)} deliveries/s`,
      value: `${r.toFixed(2)}x (${fmt(mine.serverUsPerDelivery)} vs ${fmt(kernel.usPerDelivery)} µs; kernel time ${fmt(mine.serverSystemUsPerDelivery)} vs ${fmt(kernel.sysUsPerDelivery)} µs)`,
      met: r <= 1.3 && mine.deliveredRatio >= 0.999
    })
  }
  const bareCurve = bare?.idleCurve
  for (const point of ours?.idleCurve?.points ?? []) {
    const base = bareCurve?.points.find((p) => p.connections === point.connections)
    if (base === undefined) continue
    const heap = point.heapPerConnKb / base.heapPerConnKb
    const rss = point.rssPerConnKb / base.rssPerConnKb
    checks.push({
      target: `idle memory per connection ≤ 1.2x bare ws at ${point.connections.toLocaleString('en-US')} (heap and RSS), all still open`,
      value: `heap ${heap.toFixed(2)}x (${fmt(point.heapPerConnKb)} vs ${fmt(base.heapPerConnKb)} KB), RSS ${rss.toFixed(2)}x (${fmt(point.rssPerConnKb)} vs ${fmt(base.rssPerConnKb)} KB), ${point.alive}/${point.connections} open`,
      met: heap <= 1.2 && rss <= 1.2 && point.alive === point.connections
    })
  }
  if (ours?.join !== undefined) {
    const onPostgres = results.database.startsWith('Postgres')
    const runs = ours.joinRuns
    const p99 = runs?.median.p99 ?? ours.join.latency.p99
    checks.push({
      target: `join p99 ≤ 20 ms on Postgres${runs === undefined ? '' : `, median of ${runs.runs.length} run(s)`}`,
      value: `${fmt(p99)} ms${runs === undefined || runs.runs.length < 2 ? '' : ` (runs: ${runs.p99s.map(fmt).join(', ')} ms)`}${onPostgres ? '' : ' (on PGlite: set DATABASE_URL for the real check)'}`,
      met: onPostgres ? p99 <= 20 : null
    })
  }
  return checks
}

function limitOf (step: SaturationStep): string {
  const server = step.serverCpu >= BUSY
  const gen = Math.max(...step.generatorCpu) >= BUSY
  const machine = step.serverCpu + step.generatorCpu.reduce((a, b) => a + b, 0) >= 180
  if (server && gen) return `both the server (${step.serverCpu} %) and the load generator (${step.generatorCpu.join('+')} %) were busy`
  if (server) return `the server was the limit (${step.serverCpu} % of a core; generator ${step.generatorCpu.join('+')} %)`
  if (gen) return `the LOAD GENERATOR was the limit (${step.generatorCpu.join('+')} % of a core; server only ${step.serverCpu} %)`
  if (machine) return `the 2-core machine was full (server ${step.serverCpu} % + generator ${step.generatorCpu.join('+')} %)`
  return `neither process was CPU-bound (server ${step.serverCpu} %, generator ${step.generatorCpu.join('+')} %): latency came from queueing or the other load on this shared machine`
}

/** Where the load generator, not the server, set the number. */
export function bottlenecks (results: BenchResults): string[] {
  const lines: string[] = []
  for (const k of KINDS) {
    const t = results.targets[k]
    if (t === undefined) continue
    const label = TARGET_LABELS[k]
    for (const f of t.fanout) {
      const gen = Math.max(...f.generatorCpu)
      if (gen >= BUSY) lines.push(`${label}, fan-out ${shapeLabel(f)}: the load generator ran at ${gen} % of a core; latency includes its queueing`)
      else if (f.sendLag.p99 > 5) lines.push(`${label}, fan-out ${shapeLabel(f)}: sends left up to ${f.sendLag.p99} ms (p99) after their schedule although the generator used only ${gen} % of a core: it waited for a core of the shared machine (send lag is not counted in the latency, which starts at the actual send)`)
    }
    const sat = t.saturation
    if (sat !== undefined) {
      if (sat.firstFailure !== null) lines.push(`${label}, saturation: past ${fmt(sat.best?.deliveriesPerSec)} deliveries/s ${limitOf(sat.firstFailure)}`)
      else lines.push(`${label}, saturation: p99 stayed under ${sat.p99LimitMs} ms up to the last step (${sat.steps.at(-1)?.syncHz ?? '?'} Hz/room); raise --sat-max-steps`)
    }
    const rest = t.rest
    if (rest !== undefined && !('skipped' in rest)) {
      const gen = Math.max(...rest.generatorCpu)
      if (gen >= BUSY) lines.push(`${label}, REST: autocannon ran at ${gen} % of a core (server ${rest.serverCpu} %): ${rest.serverCpu < BUSY ? 'autocannon, not the server, was the limit' : 'both were busy'}`)
    }
    if (t.join !== undefined && Math.max(...t.join.generatorCpu) >= BUSY) lines.push(`${label}, join storm: the load generator ran at ${Math.max(...t.join.generatorCpu)} % of a core`)
  }
  return lines
}

export function renderMarkdown (results: BenchResults): string {
  const m = results.machine
  const out: string[] = []
  out.push(`# Benchmark results${results.quick ? ' (--quick: sizes too small to mean much)' : ''}`, '')
  out.push(`${results.startedAt}, ${Math.round(results.durationSeconds)} s. Machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGb} GB, Node ${m.node}, Linux ${m.kernel}; ` +
    `load average ${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(' / ')} at start${m.loadAverageAtEnd === undefined ? '' : `, ${m.loadAverageAtEnd.map((x) => x.toFixed(2)).join(' / ')} at end`}. ` +
    (m.cpuPressureAtStart === undefined ? '' : `CPU pressure ${m.cpuPressureAtStart} % (time some task waited for a core, last minute) at start. `) +
    `Our server's database: ${results.database}. ${results.options.genProcs} load-generator process(es)${results.options.nice === 0 ? '' : `; servers and generators at nice ${results.options.nice}`}. ` +
    `${Object.entries(results.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`, '')
  const perTarget = Object.keys(results.targets).length > 0
  if (perTarget) out.push('↑ higher is better, ↓ lower is better; ratios are ours divided by the baseline. CPU is percent of one core.', '', renderTable(results), '')
  if (results.checks.length > 0) {
    out.push('## Targets', '', '| target | measured | met |', '|---|---|---|')
    for (const c of results.checks) out.push(`| ${c.target} | ${c.value} | ${c.met === null ? 'n/a' : c.met ? 'yes' : '**no**'} |`)
    out.push('')
  }
  if (perTarget) out.push('## Where the load generator or the shared machine, not the server, set the number', '')
  if (perTarget) out.push(...(results.bottlenecks.length === 0 ? ['Nowhere: the load generator stayed below 85 % of a core in every run.'] : results.bottlenecks.map((l) => `- ${l}`)), '')
  if (results.cluster !== undefined) out.push(...renderCluster(results.cluster))
  const errors = KINDS.flatMap((k) => Object.entries(results.targets[k]?.errors ?? {}).map(([s, e]) => `- ${TARGET_LABELS[k]}, ${s}: ${e.split('\n')[0] ?? ''}`))
  errors.push(...Object.entries(results.floor?.errors ?? {}).map(([s, e]) => `- ${FLOOR_LABEL}, ${s}: ${e.split('\n')[0] ?? ''}`))
  if (results.floor !== undefined && 'skipped' in results.floor.build) out.push(`The kernel floor was skipped: ${results.floor.build.skipped}.`, '')
  if (errors.length > 0) out.push('## Failed scenarios', '', ...errors, '')
  return out.join('\n')
}
