/**
 * The bench's flags. Defaults are sized for a shared 2-core machine: the full run takes a few minutes,
 * `--quick` (CI) some seconds of load per server. Every size the issue names can be set back with a flag.
 */
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import type { TargetKind } from './clients.js'

export const SCENARIOS = ['fanout', 'roomsize', 'saturation', 'idle', 'join', 'rest', 'cluster'] as const
export type Scenario = typeof SCENARIOS[number]
export const TARGETS: readonly TargetKind[] = ['ours', 'bare', 'socketio', 'colyseus']

export interface RoomShape { rooms: number, viewers: number }

export interface Options {
  quick: boolean
  /** Re-render the markdown of an earlier run's JSON instead of running. */
  render: string | undefined
  targets: TargetKind[]
  scenarios: Scenario[]
  fanout: RoomShape[]
  fanoutSeconds: number
  /** Room-size curve: the shapes (same viewers in all by default), the total delivery rate, seconds per point. */
  roomSizeShapes: RoomShape[]
  roomSizeRate: number
  roomSizeSeconds: number
  /** Also measure the kernel floor (bench/floor/floor.c) where the fan-out and room-size scenarios run. */
  floor: boolean
  syncHz: number
  chatHz: number
  saturation: RoomShape
  saturationStepSeconds: number
  saturationMaxSteps: number
  saturationFactor: number
  saturationRefine: number
  /** The saturation search runs every doubling up to this rate, pass or fail (so all servers share busy steps). */
  saturationMinHz: number
  /** Run a failing step once more before believing it. */
  saturationRetry: boolean
  saturationP99Ms: number
  idle: number
  /** The idle curve's connection counts (the table's idle row is the largest). */
  idleSizes: number[]
  idleRoomSize: number
  joins: number
  joinRoomSize: number
  joinConcurrency: number
  /** Join storms per target; the table shows the median run. */
  joinRuns: number
  restSeconds: number
  restConnections: number
  genProcs: number
  heartbeatMs: number
  profile: boolean
  /** Nice value of the servers and load generators (0: as the bench itself). */
  nice: number
  logLevel: string
  outDir: string
  deadlineMinutes: number
  /** Cluster scenario (bench/lib/cluster.ts): room shape, sync rates, failover leases and kill -9 runs per lease. */
  clusterShape: RoomShape
  clusterHz: number[]
  clusterLeaseMs: number[]
  clusterFailovers: number
  /** Node counts of the cluster fan-out (besides the single-process reference). */
  clusterNodes: number[]
  redisUrl: string
}

const USAGE = `npm run bench -- [flags]
  --quick                 seconds of load per server (CI); writes bench/results/quick.{md,json}
  --targets LIST          ours,bare,socketio (default all)
  --scenarios LIST        fanout,saturation,idle,join,rest,cluster (default all; --quick leaves cluster out)
  --cluster-shape RxV     cluster fan-out rooms (default 10x100), host on node A, viewers half on A, half on B
  --cluster-hz LIST       cluster fan-out sync rates per room (default 4,32)
  --cluster-lease-ms LIST ROOM_LEASE_MS of the kill -9 failover runs (default 2000,5000)
  --cluster-nodes LIST    node counts of the cluster fan-out (default 1,2,3)
  --cluster-failovers N   kill -9 runs per lease (default 5); the cluster needs DATABASE_URL (Redis: BENCH_REDIS_URL, default 127.0.0.1:6379)
  --fanout LIST           room shapes RxV, e.g. 10x100,1x1000
  --duration S            seconds per fan-out run
  --room-sizes LIST       room-size curve shapes (default 100x10,10x100,1x1000)
  --room-size-rate N      deliveries per second of every room-size point (default 40000)
  --room-size-duration S  seconds per room-size point (default 10)
  --no-floor              skip the kernel floor (bench/floor/floor.c, built with the system cc)
  --sync-hz N / --chat-hz N   per room (default 4 / 1)
  --saturation RxV        room shape of the saturation search (default 10x100)
  --sat-step S            seconds per saturation step
  --sat-max-steps N       doubling steps before giving up
  --sat-p99 MS            the latency line (default 50)
  --idle-sizes LIST       idle connection counts of the memory curve (default 1000,5000,10000,19000; rooms of --idle-room-size, default 50)
  --joins N               joins in the join storm (rooms of 50)
  --join-concurrency N    joins in flight at once
  --join-runs N           join storms per target, the median reported (default 5)
  --rest-duration S       seconds per autocannon run
  --rest-connections N    autocannon connections
  --gen-procs N           load-generator processes (default 1)
  --heartbeat-ms MS       heartbeat interval of all three servers
  --profile               write a --cpu-prof profile of each server to bench/results/profiles/
  --nice=N                run servers and load generators at nice N (e.g. --nice=-10 on a busy shared machine; needs root)
  --log-level LEVEL       our server's LOG_LEVEL (default warn)
  --out DIR               where latest.{md,json} go (default bench/results)
  --render FILE.json      only rewrite the markdown (and targets, bottlenecks) of an earlier run's JSON`

function shapes (text: string): RoomShape[] {
  return text.split(',').map((s) => {
    const match = /^(\d+)x(\d+)$/.exec(s.trim())
    if (match === null) throw new Error(`room shape ${JSON.stringify(s)} is not RxV (e.g. 10x100)`)
    return { rooms: Number(match[1]), viewers: Number(match[2]) }
  })
}

function numbers (text: string, what: string): number[] {
  return text.split(',').map((s) => {
    const value = Number(s.trim())
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${what} ${JSON.stringify(s)} must be a positive number`)
    return value
  })
}

function list<T extends string> (text: string, allowed: readonly T[], what: string): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const item of items) if (!allowed.includes(item as T)) throw new Error(`unknown ${what} ${JSON.stringify(item)} (one of ${allowed.join(', ')})`)
  return items as T[]
}

export function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      fanout: { type: 'string' },
      duration: { type: 'string' },
      'room-sizes': { type: 'string' },
      'room-size-rate': { type: 'string' },
      'room-size-duration': { type: 'string' },
      'no-floor': { type: 'boolean', default: false },
      'sync-hz': { type: 'string' },
      'chat-hz': { type: 'string' },
      saturation: { type: 'string' },
      'sat-step': { type: 'string' },
      'sat-max-steps': { type: 'string' },
      'sat-p99': { type: 'string' },
      idle: { type: 'string' },
      'idle-sizes': { type: 'string' },
      'idle-room-size': { type: 'string' },
      joins: { type: 'string' },
      'join-concurrency': { type: 'string' },
      'join-runs': { type: 'string' },
      'rest-duration': { type: 'string' },
      'rest-connections': { type: 'string' },
      'gen-procs': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      profile: { type: 'boolean', default: false },
      nice: { type: 'string' },
      'log-level': { type: 'string' },
      out: { type: 'string' },
      'cluster-shape': { type: 'string' },
      'cluster-hz': { type: 'string' },
      'cluster-lease-ms': { type: 'string' },
      'cluster-failovers': { type: 'string' },
      'cluster-nodes': { type: 'string' }
    }
  })
  if (values.help === true) {
    console.log(USAGE)
    process.exit(0)
  }
  const quick = values.quick === true
  const n = (name: keyof typeof values, quickValue: number, fullValue: number, min = 1): number => {
    const raw = values[name]
    if (raw === undefined) return quick ? quickValue : fullValue
    const value = Number(raw)
    if (!Number.isFinite(value) || value < min) throw new Error(`--${name} ${JSON.stringify(raw)} must be a number >= ${min}`)
    return value
  }
  const options: Options = {
    quick,
    render: values.render,
    targets: values.targets === undefined ? [...TARGETS] : list(values.targets, TARGETS, 'target'),
    scenarios: values.scenarios === undefined ? SCENARIOS.filter((s) => !quick || s !== 'cluster') : list(values.scenarios, SCENARIOS, 'scenario'),
    fanout: shapes(values.fanout ?? (quick ? '2x25' : '10x100,1x1000')),
    fanoutSeconds: n('duration', 1, 10, 0.1),
    roomSizeShapes: shapes(values['room-sizes'] ?? (quick ? '8x5,1x40' : '100x10,10x100,1x1000')),
    roomSizeRate: n('room-size-rate', 2000, 40000),
    roomSizeSeconds: n('room-size-duration', 1, 10, 0.1),
    floor: values['no-floor'] !== true,
    syncHz: n('sync-hz', 4, 4, 0.1),
    chatHz: n('chat-hz', 1, 1, 0),
    saturation: shapes(values.saturation ?? (quick ? '2x25' : '10x100'))[0]!,
    saturationStepSeconds: n('sat-step', 0.5, 3, 0.1),
    saturationMaxSteps: n('sat-max-steps', 2, 10),
    saturationFactor: 2,
    saturationRefine: quick ? 0 : 2,
    saturationRetry: !quick,
    saturationMinHz: quick ? 0 : 32,
    saturationP99Ms: n('sat-p99', 50, 50),
    idle: 0,
    idleSizes: numbers(values['idle-sizes'] ?? values.idle ?? (quick ? '100,300' : '1000,5000,10000,19000'), 'idle-sizes'),
    idleRoomSize: n('idle-room-size', 50, 50, 2),
    joins: n('joins', 100, 2000),
    joinRoomSize: 50,
    joinConcurrency: n('join-concurrency', 20, 20),
    joinRuns: n('join-runs', 1, 5),
    restSeconds: n('rest-duration', 1, 10),
    restConnections: n('rest-connections', 10, 50),
    genProcs: n('gen-procs', 1, 1),
    heartbeatMs: n('heartbeat-ms', 1000, 5000, 100),
    profile: values.profile === true,
    nice: values.nice === undefined ? 0 : Number(values.nice),
    logLevel: values['log-level'] ?? 'warn',
    outDir: values.out ?? 'bench/results',
    deadlineMinutes: quick ? 5 : 60,
    clusterShape: shapes(values['cluster-shape'] ?? (quick ? '2x10' : '10x100'))[0]!,
    clusterHz: numbers(values['cluster-hz'] ?? (quick ? '4' : '4,32'), 'cluster-hz'),
    clusterLeaseMs: numbers(values['cluster-lease-ms'] ?? (quick ? '2000' : '2000,5000'), 'cluster-lease-ms'),
    clusterFailovers: n('cluster-failovers', 1, 5, 0),
    clusterNodes: numbers(values['cluster-nodes'] ?? (quick ? '1,2' : '1,2,3'), 'cluster-nodes'),
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
  }
  options.idle = Math.max(...options.idleSizes)
  if (options.idleSizes.some((c) => !Number.isInteger(c) || c > 19_500)) throw new Error('--idle-sizes: whole numbers up to 19500 (a process here may hold 20,000 open files, the server included)')
  if (options.clusterNodes.some((c) => !Number.isInteger(c) || c > 5)) throw new Error('--cluster-nodes: whole numbers from 1 to 5')
  if (options.genProcs > Math.max(1, availableParallelism() * 4)) throw new Error('--gen-procs is far above the number of cores')
  if (!Number.isInteger(options.nice) || options.nice < -20 || options.nice > 19) throw new Error('--nice must be a whole number from -20 to 19')
  return options
}
