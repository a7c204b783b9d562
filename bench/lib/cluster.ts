/**
 * The cluster scenario (issue 11): several processes of one server on one Redis (and, for ours, one
 * PostgreSQL database), members of each room split across them.
 *
 * - Fan-out: two nodes of ours (REDIS_URL cluster mode) against two nodes of Socket.IO with
 *   `@socket.io/redis-adapter` (bench/servers/socketio-cluster.ts), same rooms, same rates. Each room's host is
 *   on node A (which therefore owns the room, for ours), its viewers half on A and half on B; one load-generator
 *   process per node. Measured: deliveries, loss, latency p50/p99 (overall, and same-node vs cross-node
 *   viewers), and CPU per delivery over every process the delivery needs: both nodes, the redis-server process
 *   and, for ours, the PostgreSQL backends serving the run's database.
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

export type ClusterKind = 'ours' | 'socketio'
export const CLUSTER_LABELS: Record<ClusterKind, string> = { ours: 'ours, 2 nodes', socketio: 'Socket.IO + redis-adapter, 2 nodes' }
const SINGLE_LABELS: Record<ClusterKind, string> = { ours: 'ours, 1 process', socketio: 'Socket.IO, 1 process' }
/** "ours, 2 nodes" or, for the one-process reference run of the same load, "ours, 1 process". */
export const labelOf = (kind: ClusterKind, nodes: number): string => nodes === 1 ? SINGLE_LABELS[kind] : CLUSTER_LABELS[kind]

export interface ClusterCpu {
  /** Percent of one core, per node (A, B; only A on one process). */
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
  /** 2: the cluster; 1: the same load on one process without Redis (ours without REDIS_URL, Socket.IO in memory), for reference. */
  nodes: number
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
  /** Viewers (and the host's chat echo) on node A, the host's node. */
  sameNodeLatency: Summary
  /** Viewers on node B: every delivery crossed Redis (null on one process). */
  crossNodeLatency: Summary | null
  cpu: ClusterCpu
  /** Server-side CPU time per delivery in µs: the nodes only, and nodes + Redis (cluster only) + PostgreSQL (ours). */
  usPerDelivery: { nodes: number, all: number }
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
const usPer = (cpuPct: number, perSec: number): number => perSec > 0 ? Math.round((cpuPct / 100) * 1e6 / perSec * 100) / 100 : NaN

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
      for (const kind of ['ours', 'socketio'] as const) {
        for (const nodes of [1, 2]) {
          await step(`fan-out ${labelOf(kind, nodes)}`, async () => {
            results.fanout.push(...await this.fanout(kind, nodes, redisPid))
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

  private async fanout (kind: ClusterKind, nodeCount: number, redisPid: number): Promise<ClusterFanoutResult[]> {
    const { options } = this
    const shape = options.clusterShape
    const single = nodeCount === 1
    const prefix = this.prefix(kind)
    const database = kind === 'ours' ? await this.database() : undefined
    // Redis over an idle window as long as one measurement, before the nodes exist: what others cost it.
    const idleWindow = new CpuWindow(() => [redisPid])
    await idleWindow.begin()
    if (!single) await sleep(Math.min(options.fanoutSeconds, 10) * 1000)
    const redisIdle = single ? NaN : await idleWindow.end()
    const nodes = await Promise.all((single ? ['solo'] : ['a', 'b']).map(async (n) => await this.startNode(kind, `${kind}-${n}`, prefix, database, {}, single)))
    const [a] = nodes
    const b = nodes[1] ?? a
    this.log(`  ${labelOf(kind, nodeCount)}: ${single ? `one process on ${a!.port}` : `nodes on ${a!.port} and ${b!.port}; Redis idle window ${redisIdle} %`}`)
    const [w0, w1] = await this.startWorkers(2)
    const wire = kind === 'ours' ? 'ours' : 'socketio'
    await w0!.call('target', { kind: wire, port: a!.port })
    await w1!.call('target', { kind: wire, port: b!.port })
    const roomIds = await w0!.call<string[]>('hosts', { count: shape.rooms, prefix: `cl-${kind}`, concurrency: 20 }, 600_000)
    const half = Math.ceil(shape.viewers / 2)
    await Promise.all([w0!, w1!].map(async (w, j) => {
      const count = j === 0 ? half : shape.viewers - half
      const assignments = roomIds.map((roomId) => ({ roomId, count, from: j * half })).filter((x) => x.count > 0)
      await w.call('viewers', { assignments, prefix: `cl-${kind}`, concurrency: 20 }, 900_000)
    }))
    const pgPids = database === undefined ? undefined : backendsOf(database)
    const out: ClusterFanoutResult[] = []
    for (const syncHz of options.clusterHz) {
      const r = await this.measure(kind, nodes, [w0!, w1!], redisPid, pgPids, syncHz, redisIdle)
      out.push(r)
      this.log(`  ${labelOf(kind, nodeCount)} ${shape.rooms}x${shape.viewers} at ${syncHz} Hz: p50 ${r.latency.p50} / p99 ${r.latency.p99} ms (node A p99 ${r.sameNodeLatency.p99}, cross-node p99 ${r.crossNodeLatency?.p99 ?? '–'}), ${r.deliveriesPerSec} deliveries/s (${(r.deliveredRatio * 100).toFixed(2)} %), CPU nodes ${r.cpu.nodes.join('+')} %, Redis ${r.cpu.redis} % (idle ${r.cpu.redisIdle} %), Postgres ${r.cpu.postgres ?? '–'} %; ${r.usPerDelivery.nodes} µs/delivery on the nodes, ${r.usPerDelivery.all} with Redis${kind === 'ours' ? ' and Postgres' : ''}`)
      await sleep(1000)
    }
    return out
  }

  private async measure (kind: ClusterKind, nodes: Node[], workers: RpcClient[], redisPid: number, pgPids: (() => Promise<number[]>) | undefined, syncHz: number, redisIdle: number): Promise<ClusterFanoutResult> {
    const { options } = this
    const shape = options.clusterShape
    const seconds = options.fanoutSeconds
    await Promise.all(workers.map(async (w) => await w.call('reset')))
    const nodeCpu = nodes.map((n) => new CpuWindow(() => [n.child.pid ?? -1]))
    const redisCpu = new CpuWindow(() => [redisPid])
    const pgCpu = pgPids === undefined ? undefined : new CpuWindow(pgPids)
    const genCpu = workers.map((w) => new CpuWindow(() => [w.child.pid ?? -1]))
    const all = [...nodeCpu, redisCpu, ...(pgCpu === undefined ? [] : [pgCpu]), ...genCpu]
    for (const m of all) await m.begin()
    const driven = await workers[0]!.call<{ syncs: number, chats: number, lag: HistogramJson }>('drive', { syncHz, chatHz: options.chatHz, durationMs: seconds * 1000 }, seconds * 1000 + 60_000)
    const nodesPct = await Promise.all(nodeCpu.map(async (m) => await m.end()))
    const redisPct = await redisCpu.end()
    const pgPct = pgCpu === undefined ? null : await pgCpu.end()
    const genPct = await Promise.all(genCpu.map(async (m) => await m.end()))
    const expected = driven.syncs * shape.viewers + driven.chats * (shape.viewers + 1)
    const drainUntil = Date.now() + 3000
    const count = async (): Promise<number> => (await Promise.all(workers.map(async (w) => await w.call<{ received: number }>('stats')))).reduce((s, x) => s + x.received, 0)
    while (await count() < expected && Date.now() < drainUntil) await sleep(50)
    const collected = await Promise.all(workers.map(async (w) => await w.call<{ sync: HistogramJson, chat: HistogramJson }>('collect')))
    const perWorker = collected.map((c) => new Histogram().merge(c.sync).merge(c.chat))
    const total = new Histogram()
    for (const h of perWorker) total.merge(h.toJSON())
    const perSec = total.count / seconds
    const nodesSum = nodesPct.reduce((s, x) => s + x, 0)
    const allPct = nodesSum + (nodes.length > 1 ? redisPct : 0) + (pgPct ?? 0)
    return {
      kind,
      nodes: nodes.length,
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
      sameNodeLatency: perWorker[0]!.summaryMs(),
      crossNodeLatency: nodes.length > 1 ? perWorker[1]!.summaryMs() : null,
      cpu: { nodes: nodesPct, redis: redisPct, redisIdle, postgres: pgPct, generators: genPct },
      usPerDelivery: { nodes: usPer(nodesSum, perSec), all: usPer(allPct, perSec) }
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

export function renderCluster (c: ClusterResults): string[] {
  const out: string[] = ['## Cluster: two nodes on one Redis', '']
  out.push(`Each room's host on node A, its viewers half on A and half on B; one load-generator process per node. ` +
    'The "1 process" columns are the same load, the same two load generators, on one process without Redis (ours without REDIS_URL, Socket.IO with its in-memory adapter): what going to two nodes costs per delivery. ' +
    `CPU is percent of one core over the measured window; "all" adds the redis-server process (Redis ${c.redisVersion}, pid ${c.redisPid}) and, for ours, ` +
    'the PostgreSQL backends of the run\'s database. The machine\'s Redis is shared: its CPU is a delta over the window and includes other ' +
    `clients' traffic ("Redis idle" is the same Redis over an equal window before the nodes started). Socket.IO uses @socket.io/redis-adapter ${c.adapterVersion}.` +
    (c.commit === undefined ? '' : ` Server code: commit ${c.commit}${c.srcDirty === true ? ' with uncommitted changes in src/' : ''}.`), '')
  if (c.fanout.length > 0) {
    const cols = c.fanout
    out.push(`| measurement | ${cols.map((r) => `${labelOf(r.kind, r.nodes ?? 2)}, ${r.rooms}×${r.viewers} at ${r.syncHz} Hz`).join(' | ')} |`)
    out.push(`|---|${cols.map(() => '--:').join('|')}|`)
    const row = (label: string, get: (r: ClusterFanoutResult) => number | null | undefined): void => { out.push(`| ${label} | ${cols.map((r) => f(get(r))).join(' | ')} |`) }
    row('deliveries/s', (r) => r.deliveriesPerSec)
    row('delivered (% of sent × members)', (r) => r.deliveredRatio * 100)
    row('latency p50 (ms)', (r) => r.latency.p50)
    row('latency p99 (ms)', (r) => r.latency.p99)
    row('… node A viewers (with the host) p99 (ms)', (r) => r.sameNodeLatency.p99)
    row('… node B viewers (cross-node) p50 (ms)', (r) => r.crossNodeLatency?.p50)
    row('… node B viewers (cross-node) p99 (ms)', (r) => r.crossNodeLatency?.p99)
    row('CPU node A (%)', (r) => r.cpu.nodes[0])
    row('CPU node B (%)', (r) => r.cpu.nodes[1])
    row('CPU redis-server (%, shared; not used by 1 process)', (r) => r.cpu.redis)
    row('… Redis idle window (%)', (r) => r.cpu.redisIdle)
    row('CPU PostgreSQL backends (%)', (r) => r.cpu.postgres)
    row('CPU per delivery, nodes (µs)', (r) => r.usPerDelivery.nodes)
    row('CPU per delivery, all: nodes + Redis + Postgres (µs)', (r) => r.usPerDelivery.all)
    row('load generators CPU (%)', (r) => r.cpu.generators.reduce((s, x) => s + x, 0))
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
