/**
 * The bench's curves, drawn from its own results (bench/lib/charts.ts renders): written next to the markdown
 * as <base>-roomsize.svg, <base>-idle-memory.svg and <base>-cluster-nodes.svg, each only when the run has
 * its data. No number in a chart that is not in the JSON beside it.
 */
import type { ClusterFanoutResult, ClusterResults } from './cluster.js'
import { formatNumber, lineChart, type ChartSeries } from './charts.js'
import { TARGETS } from './options.js'
import type { BenchResults } from './report.js'
import { TARGET_LABELS } from './targets.js'

export interface BenchChart { name: string, title: string, svg: string }

const SERVERS = TARGETS
const label = (value: number): string => formatNumber(value, value >= 10 ? 1 : 2)

function when (results: BenchResults): string {
  return `${results.startedAt.slice(0, 10)}, ${results.machine.cpus} cores`
}

function roomSizeChart (results: BenchResults): BenchChart | undefined {
  const series: ChartSeries[] = []
  let rate: number | undefined
  SERVERS.forEach((kind, style) => {
    const curve = results.targets[kind]?.roomSize
    if (curve === undefined) return
    rate ??= curve.deliveriesPerSec
    series.push({ name: TARGET_LABELS[kind] ?? kind, style, points: curve.points.map((p) => ({ x: p.viewers, y: p.serverUsPerDelivery, label: label(p.serverUsPerDelivery) })) })
  })
  const floor = results.floor?.roomSize ?? []
  if (series.length === 0) return undefined
  series.push({ name: 'kernel floor (C)', style: SERVERS.length, dashed: true, points: floor.map((p) => ({ x: p.viewers, y: p.usPerDelivery, label: label(p.usPerDelivery) })) })
  const svg = lineChart({
    title: 'Server CPU per delivery against room size',
    subtitle: `${formatNumber(rate ?? 0)} deliveries/s, the same viewers in rooms of each size · ${when(results)}`,
    xLabel: 'viewers per room',
    yLabel: 'CPU per delivery (µs)',
    xScale: 'log',
    series
  })
  return { name: 'roomsize', title: 'CPU per delivery against room size', svg }
}

function idleChart (results: BenchResults): BenchChart | undefined {
  const series: ChartSeries[] = []
  let roomSize: number | undefined
  SERVERS.forEach((kind, style) => {
    const curve = results.targets[kind]?.idleCurve
    if (curve === undefined) return
    roomSize ??= curve.roomSize
    const name = TARGET_LABELS[kind] ?? kind
    series.push({ name: `${name}, RSS`, style, points: curve.points.map((p) => ({ x: p.connections, y: p.rssPerConnKb, label: label(p.rssPerConnKb) })) })
    series.push({ name: `${name}, heap`, style, dashed: true, points: curve.points.map((p) => ({ x: p.connections, y: p.heapPerConnKb })) })
  })
  if (series.length === 0) return undefined
  const svg = lineChart({
    title: 'Memory per idle connection against connection count',
    subtitle: `rooms of ${roomSize ?? '?'}, heartbeats on, after a full GC · ${when(results)}`,
    xLabel: 'open connections',
    yLabel: 'KB per connection',
    xScale: 'linear',
    series
  })
  return { name: 'idle-memory', title: 'Memory per idle connection against connection count', svg }
}

/** Per kind, the runs at the highest sync rate measured (deliveries, not timers, dominate the CPU there). */
function busiest (runs: ClusterFanoutResult[]): ClusterFanoutResult[] {
  const hz = Math.max(...runs.map((r) => r.syncHz))
  return runs.filter((r) => r.syncHz === hz)
}

function clusterChart (cluster: ClusterResults | undefined, results: BenchResults): BenchChart | undefined {
  if (cluster === undefined || cluster.fanout.length === 0) return undefined
  const series: ChartSeries[] = []
  const references: Array<{ y: number, name: string }> = []
  const kinds = [...new Set(cluster.fanout.map((r) => r.kind))]
  let shape = ''
  kinds.forEach((kind, style) => {
    const runs = busiest(cluster.fanout.filter((r) => r.kind === kind))
    const first = runs[0]
    if (first === undefined) return
    shape = `${first.rooms}×${first.viewers} at ${first.syncHz} Hz sync + ${first.chatHz} Hz chat per room`
    const name = kind === 'ours' ? 'ours' : 'Socket.IO + adapter'
    const clustered = runs.filter((r) => r.mode === 'cluster').sort((a, b) => a.nodes - b.nodes)
    series.push({ name: `${name}, cluster`, style, points: clustered.map((r) => ({ x: r.nodes, y: r.usPerDelivery.all, label: label(r.usPerDelivery.all) })) })
    const single = runs.find((r) => r.mode === 'single')
    if (single !== undefined) references.push({ y: single.usPerDelivery.all, name: `${name}, 1 process: ${label(single.usPerDelivery.all)} µs` })
  })
  if (series.length === 0) return undefined
  const svg = lineChart({
    title: 'Cluster: server CPU per delivery against node count',
    subtitle: `${shape}; nodes + Redis + database · ${when(results)}`,
    xLabel: 'nodes',
    yLabel: 'CPU per delivery (µs)',
    xScale: 'linear',
    series,
    referenceLines: references
  })
  return { name: 'cluster-nodes', title: 'Cluster: CPU per delivery against node count', svg }
}

export function benchCharts (results: BenchResults): BenchChart[] {
  return [roomSizeChart(results), idleChart(results), clusterChart(results.cluster, results)].filter((c) => c !== undefined)
}
