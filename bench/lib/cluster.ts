/**
 * The cluster scenario (issue 11): several processes of one server on one Redis (and, for ours, one
 * PostgreSQL database), members of each room split across them.
 *
 * - Fan-out: N nodes of ours (REDIS_URL cluster mode) against N nodes of Socket.IO with
 *   `@socket.io/redis-adapter` (bench/servers/socketio-cluster.ts), same rooms, same rates, for each N of
 *   `options.clusterNodes` (default 1, 2, 3; one node in cluster mode is the cost of going through Redis at all),
 *   beside the same load on one process without Redis (mode 'single'). Each room's host is on node A (which
 *   therefore owns the room, for ours), its viewers spread evenly over the N nodes; one load-generator process
 *   per node (two on one node or one process, as many viewers each). Measured: deliveries, loss, latency p50/p99
 *   (overall, per node, and node A vs the other nodes), and CPU per delivery over every process the delivery
 *   needs: the nodes, the redis-server process (cluster mode) and, for ours, the PostgreSQL backends serving the
 *   run's database. The load generators are measured too but counted in no per-delivery figure.
 * - Failover: three nodes of ours; each run starts a fresh owner node, creates a room on it (so it owns the
 *   room) with the host on a second node and a viewer on a third, then kill -9s the owner and measures, from
 *   the kill, until the host's chat is answered again and until a host_sync sent after the kill reaches the
 *   viewer.
 *
 * The machine's Redis (and PostgreSQL) are shared with whatever else runs here: the redis-server CPU is a delta
 * over the measured window, read from /proc, and includes everyone's traffic; the same window's length is also
 * measured idle (before the nodes start) so that the report can show what was not ours.
 *
 * Contract: every node and load generator is killed before the scenario returns (and by the bench's exit
 * handler if it does not); every Redis key under the run's prefix is deleted; the fresh databases are dropped.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { join, resolve } from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import { connectClient, MARK_SYNC, marker, type BenchClient } from './clients.js'
import { Histogram, nowUs, type HistogramJson, type Summary } from './histogram.js'
import type { Options } from './options.js'
import { cpuSeconds, freePort, ROOT, spawnNode, stopChild, versionOf } from './proc.js'
import { RpcClient } from './rpc.js'
import { oursEnv, prepareDatabase, type DatabaseSetup } from './targets.js'
import { usPerDelivery } from './scenarios/context.js'

export type ClusterKind = 'ours' | 'socketio'
/** 'single': one process without Redis (the reference); 'cluster': REDIS_URL set, 1..N nodes. */
export type ClusterMode = 'single' | 'cluster'
const CLUSTER_NAMES: Record<ClusterKind, string> = { ours: 'ours', socketio: 'Socket.IO + redis-adapter' }
const SINGLE_LABELS: Record<ClusterKind, string> = { ours: 'ours, 1 process', socketio: 'Socket.IO, 1 process' }
/**
 * "ours, 2 nodes", "ours, 1 node on Redis" or, for the one-process reference run of the same load, "ours, 1 process".
 * Results written before modes existed have no `mode`: one node then meant the single process.
 */
export const labelOf = (kind: ClusterKind, nodes: number, mode: ClusterMode = nodes === 1 ? 'single' : 'cluster'): string =>
  mode === 'single' ? SINGLE_LABELS[kind] : `${CLUSTER_NAMES[kind]}, ${nodes === 1 ? '1 node on Redis' : `${nodes} nodes`}`
/** The node counts of the cluster runs: `options.clusterNodes` (flag --cluster-nodes), else 1,2,3 (quick: 1,2). */
export const clusterNodeCounts = (options: Options): number[] =>
  (options as { clusterNodes?: number[] }).clusterNodes ?? (options.quick ? [1, 2] : [1, 2, 3])
/** The servers of the fan-out runs: `options.clusterKinds` (flag --cluster-kinds), else both. */
export const clusterKinds = (options: Options): ClusterKind[] =>
  (options as { clusterKinds?: ClusterKind[] }).clusterKinds ?? ['ours', 'socketio']
const NODE_NAMES = 'abcdefghij'

export interface ClusterCpu {
  /** Percent of one core, per node (A, B, C…; only A on one process). */
  nodes: number[]
  redis: number
  /** The same Redis over a window of the same length before the nodes started (others' traffic, heartbeats). */
  redisIdle: number
  /** PostgreSQL backends connected to the run's database (ours only). */
  postgres: number | null
  generators: number[]
}

export interface ClusterFanoutResult {
  kind: ClusterKind
  /**
   * 'cluster': `nodes` processes on Redis (REDIS_URL set; 1 is one node paying the Redis round trip);
   * 'single': the same load on one process without Redis (ours without REDIS_URL, Socket.IO in memory), for
   * reference. Absent in results written before modes existed (then nodes 1 meant single, 2 cluster).
   */
  mode: ClusterMode
  nodes: number
  /** The column's label, e.g. "ours, 3 nodes". */
  label: string
  /** Load-generator processes (each on one node: worker j on node j mod nodes). */
  generators: number
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
  /** Viewers (and the host's chat echo) on node A, the host's node (the room's owner, for ours). */
  sameNodeLatency: Summary
  /** Viewers on the other nodes: every delivery crossed Redis (null on one node). */
  crossNodeLatency: Summary | null
  /** Latency of the viewers on each node, A first. */
  nodeLatency: Summary[]
  /** Deliveries received per node, A first. */
  nodeReceived: number[]
  /** CPU percentages are over this window: the drive and the drain after it (until everything arrived, at most 3 s). */
  meteredSeconds: number
  cpu: ClusterCpu
  /**
   * Server-side CPU time per delivery in µs: the nodes only; nodes + Redis (cluster mode) + PostgreSQL (ours);
   * and the latter less the Redis idle window (others' traffic on the shared Redis), floored at the nodes + Postgres.
   */
  usPerDelivery: { nodes: number, all: number, allLessIdle: number }
}

export interface FailoverRun {
  /** From the kill until a chat of the host (connected to another node) was answered. */
  chatMs: number | null
  /** From the kill until the viewer (on a third node) received a host_sync sent after the kill. */
  syncMs: number | null
  newOwner: string | null
  chatAttempts: number
}

export interface FailoverResult {
  nodes: number
  leaseMs: number
  runs: FailoverRun[]
  chat: { min: number, median: number, max: number } | null
  sync: { min: number, median: number, max: number } | null
}

export interface ClusterResults {
  /** The commit the nodes ran, and whether src/ had uncommitted changes then (the working tree is shared). */
  commit?: string
  srcDirty?: boolean
  redisVersion: string
  redisPid: number
  adapterVersion: string
  fanout: ClusterFanoutResult[]
  failover: FailoverResult[]
  errors: Record<string, string>
}

interface Node {
  name: string
  port: number
  child: ChildProcess
  log: WriteStream
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const round1 = (v: number): number => Math.round(v * 10) / 10

const SCRIPTS: Record<ClusterKind, string> = { ours: 'src/server.ts', socketio: 'bench/servers/socketio-cluster.ts' }

/** CPU of a changing set of processes: a process seen only at the end started inside the window (all its CPU counts). */
class CpuWindow {
  private readonly start = new Map<number, number>()
  private startWall = 0
  constructor (private readonly pids: () => Promise<number[]> | number[]) {}

  async begin (): Promise<void> {
    this.start.clear()
    for (const pid of await this.pids()) this.start.set(pid, cpuSeconds(pid))
    this.startWall = performance.now()
  }

  async end (): Promise<number> {
    const wall = (performance.now() - this.startWall) / 1000
    let used = 0
    for (const pid of new Set([...this.start.keys(), ...await this.pids()])) {
      const now = cpuSeconds(pid)
      if (Number.isNaN(now)) continue
      used += now - (this.start.get(pid) ?? 0)
    }
    return wall <= 0 ? NaN : round1((used / wall) * 100)
  }
}

export class ClusterBench {
  private readonly nodes = new Set<Node>()
  private readonly workers: RpcClient[] = []
  private readonly databases: DatabaseSetup[] = []
  private readonly prefixes: string[] = []
  private readonly redis: Redis

  constructor (private readonly options: Options, private readonly redisUrl: string, private readonly log: (line: string) => void) {
    // No reconnect loop: the orchestrator needs Redis at the start and the end only, and must never hang on it.
    this.redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: () => null, connectionName: 'wp-bench-orchestrator' })
    this.redis.on('error', () => {}) // connect() and each command report their own failure
  }

  async run (): Promise<ClusterResults> {
    try {
      await this.redis.connect()
    } catch (err) {
      this.redis.disconnect()
      throw new Error(`Redis at ${this.redisUrl} does not answer (set BENCH_REDIS_URL): ${(err as Error).message}`, { cause: err })
    }
    const info = await this.redis.info('server')
    const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1])
    const results: ClusterResults = {
      ...gitState(),
      redisVersion: /redis_version:(\S+)/.exec(info)?.[1] ?? '?',
      redisPid,
      adapterVersion: versionOf('@socket.io/redis-adapter'),
      fanout: [],
      failover: [],
      errors: {}
    }
    if (Number.isNaN(cpuSeconds(redisPid))) this.log(`  redis-server pid ${redisPid} is not readable in /proc: its CPU will be missing`)
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      const t0 = performance.now()
      try {
        await fn()
      } catch (err) {
        results.errors[name] = (err as Error).message
        this.log(`  ${name}: FAILED: ${(err as Error).message}`)
      } finally {
        await this.stopAll()
        this.log(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      }
    }
    try {
      const runs: Array<[ClusterMode, number]> = [['single', 1], ...clusterNodeCounts(this.options).map((n): [ClusterMode, number] => ['cluster', n])]
      for (const kind of clusterKinds(this.options)) {
        for (const [mode, nodes] of runs) {
          await step(`fan-out ${labelOf(kind, nodes, mode)}`, async () => {
            results.fanout.push(...await this.fanout(kind, mode, nodes, redisPid))
          })
        }
      }
      for (const leaseMs of this.options.clusterFailovers > 0 ? this.options.clusterLeaseMs : []) {
        await step(`failover, ROOM_LEASE_MS ${leaseMs}`, async () => {
          results.failover.push(await this.failover(leaseMs))
        })
      }
    } finally {
      await this.close()
    }
    return results
  }

  // ---- fan-out ----

  private async fanout (kind: ClusterKind, mode: ClusterMode, nodeCount: number, redisPid: number): Promise<ClusterFanoutResult[]> {
    const { options } = this
    const shape = options.clusterShape
    const single = mode === 'single'
    const label = labelOf(kind, nodeCount, mode)
    const prefix = this.prefix(kind)
    const database = kind === 'ours' ? await this.database() : undefined
    // Redis over an idle window as long as one measurement, before the nodes exist: what others cost it.
    const idleWindow = new CpuWindow(() => [redisPid])
    await idleWindow.begin()
    if (!single) await sleep(Math.min(options.fanoutSeconds, 10) * 1000)
    const redisIdle = single ? NaN : await idleWindow.end()
    const names = single ? ['solo'] : [...NODE_NAMES.slice(0, nodeCount)]
    const nodes = await Promise.all(names.map(async (n) => await this.startNode(kind, `${kind}-${n}`, prefix, database, {}, single)))
    this.log(`  ${label}: ${single ? `one process on ${nodes[0]!.port}` : `node${nodes.length > 1 ? 's' : ''} on ${nodes.map((n) => n.port).join(', ')}; Redis idle window ${redisIdle} %`}`)
    // One load generator per node (two on a single node, as the one-process reference always had), viewers
    // spread evenly over them; worker j talks to node j mod N, so worker 0 (the hosts) is on node A.
    const workers = await this.startWorkers(Math.max(2, nodes.length))
    const nodeOf = (j: number): number => j % nodes.length
    const wire = kind === 'ours' ? 'ours' : 'socketio'
    await Promise.all(workers.map(async (w, j) => await w.call('target', { kind: wire, port: nodes[nodeOf(j)]!.port })))
    const roomIds = await workers[0]!.call<string[]>('hosts', { count: shape.rooms, prefix: `cl-${kind}`, concurrency: 20 }, 600_000)
    const counts = workers.map((_w, j) => Math.floor(shape.viewers / workers.length) + (j < shape.viewers % workers.length ? 1 : 0))
    const froms = counts.map((_c, j) => counts.slice(0, j).reduce((s, x) => s + x, 0))
    // One load generator after the other, 10 joins in flight: every join of ours is a write at the room's owner,
    // and on a busy machine 20 in flight per generator left some waiting past the owner's STORE_WAIT_MS.
    for (const [j, w] of workers.entries()) {
      const assignments = roomIds.map((roomId) => ({ roomId, count: counts[j]!, from: froms[j]! })).filter((x) => x.count > 0)
      await w.call('viewers', { assignments, prefix: `cl-${kind}`, concurrency: 10 }, 900_000)
    }
    const pgPids = database === undefined ? undefined : backendsOf(database)
    const out: ClusterFanoutResult[] = []
    for (const syncHz of options.clusterHz) {
      const r = await this.measure(kind, mode, label, nodes, workers, nodeOf, redisPid, pgPids, syncHz, redisIdle)
      out.push(r)
      const others = r.nodeLatency.slice(1).map((l) => l.p99).join('/')
      this.log(`  ${label} ${shape.rooms}x${shape.viewers} at ${syncHz} Hz: p50 ${r.latency.p50} / p99 ${r.latency.p99} ms (node A p99 ${r.sameNodeLatency.p99}, other nodes p99 ${others === '' ? '–' : others}), ${r.deliveriesPerSec} deliveries/s (${(r.deliveredRatio * 100).toFixed(2)} %), CPU nodes ${r.cpu.nodes.join('+')} %, Redis ${single ? '–' : r.cpu.redis} % (idle ${r.cpu.redisIdle} %), Postgres ${r.cpu.postgres ?? '–'} %, generators ${r.cpu.generators.join('+')} %; ${r.usPerDelivery.nodes} µs/delivery on the nodes, ${r.usPerDelivery.all} with ${single ? '' : 'Redis'}${kind === 'ours' ? `${single ? '' : ' and '}Postgres` : ''}${single ? '' : ` (${r.usPerDelivery.allLessIdle} less the idle Redis)`}`)
      await sleep(1000)
    }
    return out
  }

  private async measure (kind: ClusterKind, mode: ClusterMode, label: string, nodes: Node[], workers: RpcClient[], nodeOf: (worker: number) => number, redisPid: number, pgPids: (() => Promise<number[]>) | undefined, syncHz: number, redisIdle: number): Promise<ClusterFanoutResult> {
    const { options } = this
    const shape = options.clusterShape
    const seconds = options.fanoutSeconds
    const single = mode === 'single'
    await Promise.all(workers.map(async (w) => await w.call('reset')))
    const nodeCpu = nodes.map((n) => new CpuWindow(() => [n.child.pid ?? -1]))
    const redisCpu = new CpuWindow(() => [redisPid])
    const pgCpu = pgPids === undefined ? undefined : new CpuWindow(pgPids)
    const genCpu = workers.map((w) => new CpuWindow(() => [w.child.pid ?? -1]))
    const all = [...nodeCpu, redisCpu, ...(pgCpu === undefined ? [] : [pgCpu]), ...genCpu]
    for (const m of all) await m.begin()
    const meteredFrom = performance.now()
    const driven = await workers[0]!.call<{ syncs: number, chats: number, lag: HistogramJson }>('drive', { syncHz, chatHz: options.chatHz, durationMs: seconds * 1000 }, seconds * 1000 + 60_000)
    const expected = driven.syncs * shape.viewers + driven.chats * (shape.viewers + 1)
    // The meters run until everything sent has arrived (or 3 s passed), as in the one-process fan-out: a cluster
    // that fell behind spends CPU on its backlog after the last send, and those deliveries are counted too.
    const drainUntil = Date.now() + 3000
    const count = async (): Promise<number> => (await Promise.all(workers.map(async (w) => await w.call<{ received: number }>('stats')))).reduce((s, x) => s + x.received, 0)
    while (await count() < expected && Date.now() < drainUntil) await sleep(20)
    const nodesPct = await Promise.all(nodeCpu.map(async (m) => await m.end()))
    const redisPct = await redisCpu.end()
    const pgPct = pgCpu === undefined ? null : await pgCpu.end()
    const genPct = await Promise.all(genCpu.map(async (m) => await m.end()))
    const metered = (performance.now() - meteredFrom) / 1000
    const collected = await Promise.all(workers.map(async (w) => await w.call<{ sync: HistogramJson, chat: HistogramJson }>('collect')))
    const perNode = nodes.map(() => new Histogram())
    collected.forEach((c, j) => { perNode[nodeOf(j)]!.merge(c.sync).merge(c.chat) })
    const total = new Histogram()
    for (const h of perNode) total.merge(h.toJSON())
    const cross = new Histogram()
    for (const h of perNode.slice(1)) cross.merge(h.toJSON())
    const perSec = total.count / seconds
    /** Deliveries per second of the metered window (the drive and its drain), against which CPU percent is read. */
    const meteredPerSec = total.count / metered
    const nodesSum = nodesPct.reduce((s, x) => s + x, 0)
    const redisUsed = single ? 0 : redisPct
    const allPct = nodesSum + redisUsed + (pgPct ?? 0)
    const allLessIdlePct = nodesSum + (single ? 0 : Math.max(0, redisPct - (Number.isNaN(redisIdle) ? 0 : redisIdle))) + (pgPct ?? 0)
    return {
      kind,
      mode,
      nodes: nodes.length,
      label,
      generators: workers.length,
      rooms: shape.rooms,
      viewers: shape.viewers,
      seconds,
      syncHz,
      chatHz: options.chatHz,
      sent: { syncs: driven.syncs, chats: driven.chats },
      expected,
      received: total.count,
      deliveredRatio: expected === 0 ? 1 : Math.round((total.count / expected) * 10000) / 10000,
      deliveriesPerSec: Math.round(perSec),
      latency: total.summaryMs(),
      sameNodeLatency: perNode[0]!.summaryMs(),
      crossNodeLatency: nodes.length > 1 ? cross.summaryMs() : null,
      nodeLatency: perNode.map((h) => h.summaryMs()),
      nodeReceived: perNode.map((h) => h.count),
      cpu: { nodes: nodesPct, redis: redisPct, redisIdle, postgres: pgPct, generators: genPct },
      meteredSeconds: Math.round(metered * 100) / 100,
      usPerDelivery: { nodes: usPerDelivery(nodesSum, meteredPerSec), all: usPerDelivery(allPct, meteredPerSec), allLessIdle: usPerDelivery(allLessIdlePct, meteredPerSec) }
    }
  }

  // ---- failover ----

  private async failover (leaseMs: number): Promise<FailoverResult> {
    const prefix = this.prefix('failover')
    const database = await this.database()
    const env = { ROOM_LEASE_MS: String(leaseMs), DISCONNECT_GRACE_MS: '30000' }
    const [e1, e2] = await Promise.all(['edge-1', 'edge-2'].map(async (n) => await this.startNode('ours', n, prefix, database, env)))
    const runs: FailoverRun[] = []
    for (let i = 0; i < this.options.clusterFailovers; i++) {
      const owner = await this.startNode('ours', `owner-${i}`, prefix, database, env)
      const run = await this.failoverOnce(i, owner, e1!, e2!, leaseMs)
      runs.push(run)
      this.log(`    kill -9 #${i + 1} (ROOM_LEASE_MS ${leaseMs}): chat answered again after ${run.chatMs ?? 'never'} ms (${run.chatAttempts} attempts), host_sync reached the viewer after ${run.syncMs ?? 'never'} ms; new owner ${run.newOwner ?? '?'}`)
    }
    const stats = (values: Array<number | null>): FailoverResult['chat'] => {
      const ok = values.filter((v): v is number => v !== null).sort((x, y) => x - y)
      if (ok.length === 0) return null
      const mid = ok.length % 2 === 1 ? ok[(ok.length - 1) / 2]! : (ok[ok.length / 2 - 1]! + ok[ok.length / 2]!) / 2
      return { min: ok[0]!, median: Math.round(mid), max: ok.at(-1)! }
    }
    return { nodes: 3, leaseMs, runs, chat: stats(runs.map((r) => r.chatMs)), sync: stats(runs.map((r) => r.syncMs)) }
  }

  private async failoverOnce (i: number, owner: Node, hostNode: Node, viewerNode: Node, leaseMs: number): Promise<FailoverRun> {
    const base = `http://127.0.0.1:${owner.port}`
    const hostId = `fo-host-${i}`
    const made = await fetch(`${base}/rooms`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': hostId }, body: JSON.stringify({ name: `failover ${i}` }) })
    if (made.status !== 201) throw new Error(`POST /rooms on the owner answered ${made.status}: ${await made.text()}`)
    const roomId = (await made.json() as { id: string }).id
    const clients: BenchClient[] = []
    let syncTimer: NodeJS.Timeout | undefined
    try {
      const host = await connectClient('ours', hostNode.port, hostId)
      clients.push(host)
      const viewer = await connectClient('ours', viewerNode.port, `fo-viewer-${i}`)
      clients.push(viewer)
      await host.request('join_room', { roomId }, 10_000)
      await viewer.request('join_room', { roomId }, 10_000)
      await host.request('chat', { roomId, message: 'before the kill' }, 10_000)
      let killedUs = Infinity
      let lastSyncUs = 0
      let syncBackUs: number | undefined
      viewer.onMarked = (kind, sentUs) => {
        if (kind !== MARK_SYNC) return
        lastSyncUs = nowUs()
        if (sentUs > killedUs && syncBackUs === undefined) syncBackUs = lastSyncUs
      }
      let position = 0
      // The host syncs at 20 Hz throughout (open loop: replies are not awaited; those refused during the outage are dropped).
      syncTimer = setInterval(() => {
        position += 0.05
        host.fire('host_sync', { roomId, videoUrl: `https://example.com/failover.mp4#${marker('S', nowUs())}`, currentTime: position, isPlaying: true, playbackRate: 1 })
      }, 50)
      const seenBy = Date.now() + 10_000
      while (lastSyncUs === 0 && Date.now() < seenBy) await sleep(20)
      if (lastSyncUs === 0) throw new Error('the viewer got no host_sync before the kill')
      await sleep(300)
      killedUs = nowUs()
      owner.child.kill('SIGKILL')
      // A chat every 100 ms, each in flight on its own, so the first one the new owner serves is seen within 100 ms.
      let chatBackUs: number | undefined
      let attempts = 0
      const deadline = Date.now() + leaseMs + 20_000
      const inFlight: Array<Promise<void>> = []
      while ((chatBackUs === undefined || syncBackUs === undefined) && Date.now() < deadline) {
        if (chatBackUs === undefined) {
          attempts++
          inFlight.push(host.request('chat', { roomId, message: `after the kill ${attempts}` }, 5000).then(() => {
            const at = nowUs()
            if (chatBackUs === undefined || at < chatBackUs) chatBackUs = at
          }, () => {}))
        }
        await sleep(100)
      }
      await Promise.all(inFlight)
      const ms = (us: number | undefined): number | null => us === undefined ? null : Math.round((us - killedUs) / 1000)
      const after = await fetch(`http://127.0.0.1:${hostNode.port}/rooms/${roomId}`, { headers: { 'x-user-id': hostId } }).catch(() => undefined)
      return { chatMs: ms(chatBackUs), syncMs: ms(syncBackUs), newOwner: after?.headers.get('x-room-owner') ?? null, chatAttempts: attempts }
    } finally {
      clearInterval(syncTimer)
      for (const c of clients) c.close()
      await this.stopNode(owner)
      await sleep(200)
    }
  }

  // ---- processes ----

  private prefix (what: string): string {
    const p = `wp-bench-${process.pid}-${what}-${randomBytes(3).toString('hex')}:`
    this.prefixes.push(p)
    return p
  }

  private async database (): Promise<DatabaseSetup> {
    const db = await prepareDatabase()
    this.databases.push(db)
    if (db.env.DATABASE_URL === undefined) throw new Error('cluster mode needs PostgreSQL: set DATABASE_URL')
    return db
  }

  /** A node of the cluster, or (`single`) the same server as one process without Redis. */
  private async startNode (kind: ClusterKind, name: string, prefix: string, database: DatabaseSetup | undefined, extra: Record<string, string>, single = false): Promise<Node> {
    const { options } = this
    const port = await freePort()
    const logDir = resolve(ROOT, options.outDir, 'logs')
    mkdirSync(logDir, { recursive: true })
    const log = createWriteStream(join(logDir, `cluster-${name}.log`))
    const env: Record<string, string | undefined> = {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      HEARTBEAT_MS: String(options.heartbeatMs),
      ...(single ? {} : { REDIS_URL: this.redisUrl, REDIS_PREFIX: prefix }),
      ...(kind === 'ours' && database !== undefined ? { ...oursEnv(options, database), ...(single ? {} : { NODE_ID: name }) } : {}),
      ...extra
    }
    if (single) delete env.REDIS_URL
    if (kind !== 'ours') delete env.DATABASE_URL
    let head = ''
    const child = spawnNode({
      script: single && kind === 'socketio' ? 'bench/servers/socketio.ts' : SCRIPTS[kind],
      env,
      nice: options.nice,
      output: (chunk) => {
        if (head.length < 65_536) head += chunk.toString('utf8')
        log.write(chunk)
      }
    })
    const node: Node = { name, port, child, log }
    this.nodes.add(node)
    const readiness = kind === 'ours' ? '/readyz' : '/healthz'
    const deadline = Date.now() + 180_000
    while (true) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited during start (${child.exitCode ?? child.signalCode}):\n${head.slice(-2000)}`)
      if (Date.now() > deadline) throw new Error(`${name} was not ready within 180 s:\n${head.slice(-2000)}`)
      try {
        const res = await fetch(`http://127.0.0.1:${port}${readiness}`, { signal: AbortSignal.timeout(2000) })
        if (res.ok) return node
      } catch {
        // not listening yet
      }
      await sleep(100)
    }
  }

  private async stopNode (node: Node): Promise<void> {
    await stopChild(node.child, 15_000)
    this.nodes.delete(node)
    await new Promise<void>((resolve) => { node.log.end(() => { resolve() }) })
  }

  private async startWorkers (n: number): Promise<RpcClient[]> {
    const started = Array.from({ length: n }, (_v, i) => new RpcClient(`cluster loadgen ${i}`, spawnNode({
      script: 'bench/loadgen/worker.ts',
      env: { ...process.env, NODE_OPTIONS: undefined },
      ipc: true,
      nice: this.options.nice,
      output: (chunk) => { process.stderr.write(`[cluster loadgen ${i}] ${chunk.toString('utf8')}`) }
    })))
    this.workers.push(...started)
    return started
  }

  private async stopAll (): Promise<void> {
    await Promise.all(this.workers.splice(0).map(async (w) => {
      await w.call('closeAll', {}, 5000).catch(() => {})
      await w.call('exit', {}, 5000).catch(() => {})
      await stopChild(w.child, 3000)
    }))
    await Promise.all([...this.nodes].map(async (n) => { await this.stopNode(n) }))
    for (const db of this.databases.splice(0)) await db.cleanup()
  }

  private async close (): Promise<void> {
    await this.stopAll()
    for (const p of this.prefixes) {
      let cursor = '0'
      for (let i = 0; i < 1000; i++) {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000)
        if (keys.length > 0) await this.redis.del(...keys)
        cursor = next
        if (cursor === '0') break
      }
    }
    this.redis.disconnect()
  }
}

/** Pids of the PostgreSQL backends connected to the run's database, read from pg_stat_activity. */
function backendsOf (database: DatabaseSetup): () => Promise<number[]> {
  return async () => {
    const url = new URL(database.env.DATABASE_URL!)
    const name = decodeURIComponent(url.pathname.slice(1))
    const client = new pg.Client({ connectionString: database.env.DATABASE_URL })
    try {
      await client.connect()
      const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
      return rows.map((r) => r.pid)
    } finally {
      await client.end().catch(() => {})
    }
  }
}

function gitState (): { commit?: string, srcDirty?: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'packages/protocol'], { cwd: ROOT, encoding: 'utf8' }).trim() !== ''
    return { commit, srcDirty: dirty }
  } catch {
    return {}
  }
}

// ---- report ----

const f = (v: number | null | undefined): string => {
  if (v === null || v === undefined || Number.isNaN(v)) return '–'
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

/** One point of the "CPU per delivery against node count" curve. */
export interface ClusterCurvePoint {
  mode: ClusterMode
  /** 1 for the single process. */
  nodes: number
  label: string
  /** Server CPU per delivery (µs): nodes + Redis (cluster mode) + PostgreSQL (ours). */
  all: number
  /** The same less the Redis idle window (others' traffic on the shared Redis). */
  allLessIdle: number
  /** The nodes only. */
  nodesOnly: number
  deliveredRatio: number
}

export interface ClusterCurve {
  kind: ClusterKind
  syncHz: number
  rooms: number
  viewers: number
  /** The one-process reference (no Redis), when it ran. */
  single: ClusterCurvePoint | undefined
  /** Cluster mode, by node count ascending. */
  cluster: ClusterCurvePoint[]
}

/** The fan-out results as curves: per kind and sync rate, CPU per delivery against node count, beside the single process. */
export function clusterCurves (c: ClusterResults): ClusterCurve[] {
  const curves = new Map<string, ClusterCurve>()
  for (const r of c.fanout) {
    const mode: ClusterMode = r.mode ?? (r.nodes === 1 ? 'single' : 'cluster')
    const key = `${r.kind} ${r.syncHz} ${r.rooms}x${r.viewers}`
    let curve = curves.get(key)
    if (curve === undefined) {
      curve = { kind: r.kind, syncHz: r.syncHz, rooms: r.rooms, viewers: r.viewers, single: undefined, cluster: [] }
      curves.set(key, curve)
    }
    const point: ClusterCurvePoint = {
      mode,
      nodes: r.nodes,
      label: r.label ?? labelOf(r.kind, r.nodes, mode),
      all: r.usPerDelivery.all,
      allLessIdle: r.usPerDelivery.allLessIdle ?? r.usPerDelivery.all,
      nodesOnly: r.usPerDelivery.nodes,
      deliveredRatio: r.deliveredRatio
    }
    if (mode === 'single') curve.single = point
    else curve.cluster.push(point)
  }
  for (const curve of curves.values()) curve.cluster.sort((x, y) => x.nodes - y.nodes)
  return [...curves.values()]
}

export function renderCluster (c: ClusterResults): string[] {
  const out: string[] = ['## Cluster: 1, 2, 3 nodes on one Redis', '']
  out.push('Each room\'s host on node A (for ours, the room\'s owner), its viewers spread evenly over the nodes; one load-generator process per node (two on one node). ' +
    '"1 process" is the same load, the same load generators, on one process without Redis (ours without REDIS_URL, Socket.IO with its in-memory adapter); ' +
    '"1 node on Redis" is one node in cluster mode: what going through Redis at all costs per delivery. On this 2-core machine throughput cannot grow with nodes: ' +
    'the CPU per delivery is what more cores would buy. ' +
    `CPU is percent of one core over the measured window; "all" adds the redis-server process (Redis ${c.redisVersion}, pid ${c.redisPid}) in cluster mode and, for ours, ` +
    'the PostgreSQL backends of the run\'s database. The machine\'s Redis is shared: its CPU is a delta over the window and includes other ' +
    `clients' traffic ("Redis idle" is the same Redis over an equal window before the nodes started). Socket.IO uses @socket.io/redis-adapter ${c.adapterVersion}.` +
    (c.commit === undefined ? '' : ` Server code: commit ${c.commit}${c.srcDirty === true ? ' with uncommitted changes in src/' : ''}.`), '')
  const curves = clusterCurves(c)
  if (curves.length > 0) {
    const counts = [...new Set(curves.flatMap((k) => k.cluster.map((p) => p.nodes)))].sort((x, y) => x - y)
    out.push('**Server CPU per delivery (µs; nodes + Redis [+ PostgreSQL for ours]) against node count:**', '')
    out.push(`| server, rooms × viewers, sync rate | 1 process, no Redis | ${counts.map((n) => n === 1 ? '1 node on Redis' : `${n} nodes`).join(' | ')} |`)
    out.push(`|---|--:|${counts.map(() => '--:').join('|')}|`)
    for (const k of curves) {
      const at = (n: number): string => f(k.cluster.find((p) => p.nodes === n)?.all)
      out.push(`| ${CLUSTER_NAMES[k.kind]}, ${k.rooms}×${k.viewers} at ${k.syncHz} Hz | ${f(k.single?.all)} | ${counts.map(at).join(' | ')} |`)
    }
    out.push('')
  }
  if (c.fanout.length > 0) {
    out.push('| run | rooms × viewers, Hz | deliveries/s | delivered (%) | p50 (ms) | p99 (ms) | node A p99 (ms) | other nodes p99 (ms) | CPU per node (%) | redis-server (%) | Redis idle (%) | PostgreSQL (%) | µs/delivery, nodes | µs/delivery, all | µs/delivery, all less idle Redis | load generators (%) |')
    out.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const r of c.fanout) {
      const mode: ClusterMode = r.mode ?? (r.nodes === 1 ? 'single' : 'cluster')
      out.push(`| ${r.label ?? labelOf(r.kind, r.nodes, mode)} | ${r.rooms}×${r.viewers}, ${r.syncHz} | ${f(r.deliveriesPerSec)} | ${f(r.deliveredRatio * 100)} | ${f(r.latency.p50)} | ${f(r.latency.p99)} | ${f(r.sameNodeLatency.p99)} | ${f(r.crossNodeLatency?.p99)} | ` +
        `${r.cpu.nodes.map((x) => f(x)).join(' + ')} | ${mode === 'single' ? '–' : f(r.cpu.redis)} | ${f(r.cpu.redisIdle)} | ${f(r.cpu.postgres)} | ${f(r.usPerDelivery.nodes)} | ${f(r.usPerDelivery.all)} | ${f(r.usPerDelivery.allLessIdle)} | ${f(r.cpu.generators.reduce((s, x) => s + x, 0))} |`)
    }
    out.push('')
  }
  for (const fo of c.failover) {
    out.push(`**Failover, kill -9 of the owner** (${fo.nodes} nodes, ROOM_LEASE_MS ${fo.leaseMs}, ${fo.runs.length} runs; host and viewer on the two other nodes; host syncs at 20 Hz and chats every 100 ms after the kill):`, '')
    out.push('| from the kill until | min (ms) | median (ms) | max (ms) | runs (ms) |', '|---|--:|--:|--:|---|')
    out.push(`| the host's chat is answered again | ${f(fo.chat?.min)} | ${f(fo.chat?.median)} | ${f(fo.chat?.max)} | ${fo.runs.map((r) => r.chatMs ?? 'never').join(', ')} |`)
    out.push(`| a host_sync sent after the kill reaches the viewer | ${f(fo.sync?.min)} | ${f(fo.sync?.median)} | ${f(fo.sync?.max)} | ${fo.runs.map((r) => r.syncMs ?? 'never').join(', ')} |`, '')
  }
  const errors = Object.entries(c.errors)
  if (errors.length > 0) out.push('Failed:', '', ...errors.map(([k, e]) => `- ${k}: ${e.split('\n')[0] ?? ''}`), '')
  return out
}
