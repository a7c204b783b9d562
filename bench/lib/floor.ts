/**
 * The floor of a fan-out (issue 15): bench/floor/floor.c, compiled with the system `cc`, writes one pre-framed
 * WebSocket text frame per delivery to loopback sockets on the bench's fan-out schedule, and the bench measures
 * its CPU per delivery exactly as it does for the servers: CpuMeter on its pid over the timed run, divided by
 * the deliveries the receivers counted.
 *
 * The receivers are the bench's own load-generator workers (bench/loadgen/worker.ts), unchanged: the floor
 * answers the few requests of the JSON protocol they send while populating (connected, create_room,
 * join_room), so their `hosts` and `viewers` commands fill its rooms and their viewers time its frames with
 * the same code as any server's. Sockets are spread over at least two worker processes from 2,000 sockets
 * on (and at most SOCKETS_PER_RECEIVER per process); workers beyond those given are started here and stopped
 * after the run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { setPriority } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Summary } from './histogram.js'
import { CpuMeter, ROOT } from './proc.js'
import type { RpcClient } from './rpc.js'
import { usPerDelivery } from './scenarios/context.js'
import { awaitDeliveries, collectLatencies } from './scenarios/fanout.js'
import { startWorkers, stopWorkers } from './workers.js'

export const FLOOR_SOURCE = join(ROOT, 'bench', 'floor', 'floor.c')
/** Sockets per receiving worker at most (well under the 20,000 open files a process may hold here). */
export const SOCKETS_PER_RECEIVER = 5000
/** From this many sockets on, the receivers are at least two processes. */
export const SPREAD_FROM = 2000

export type FloorBuild = { binary: string, compiler: string } | { skipped: string }

/** Compiles floor.c into `outDir`/floor with `cc -O2`; `{ skipped }` says why when there is no compiler or it fails. */
export function buildFloor (outDir: string): FloorBuild {
  let compiler: string
  try {
    compiler = execFileSync('cc', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim()
  } catch (err) {
    return { skipped: `no C compiler (cc --version: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }
  }
  mkdirSync(outDir, { recursive: true })
  const binary = join(outDir, 'floor')
  try {
    execFileSync('cc', ['-O2', '-o', binary, FLOOR_SOURCE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(0, 3).join(' ')
    return { skipped: `cc could not compile bench/floor/floor.c: ${stderr === '' ? (err as Error).message : stderr}` }
  }
  return { binary, compiler }
}

/** What the floor program itself reports about a run (getrusage of the run, counts of what it wrote). */
export interface FloorReport {
  syncs: number
  chats: number
  frames: number
  bytes: number
  shortWrites: number
  eagain: number
  writeErrors: number
  userUs: number
  sysUs: number
  wallUs: number
  wakeups: number
  maxLagUs: number
  meanLagUs: number
}

export interface FloorRun {
  rooms: number
  viewers: number
  syncHz: number
  chatHz: number
  seconds: number
  syncBytes: number
  chatBytes: number
  /** Open sockets: rooms × (viewers + 1). */
  sockets: number
  expected: number
  received: number
  deliveredRatio: number
  deliveriesPerSec: number
  /** The floor's CPU over the timed run (CpuMeter on its pid), in percent of one core. */
  cpuPct: number
  /**
   * Floor CPU per delivery in µs: CPU time over the metered window (the whole run, `meteredSeconds`) divided by
   * the deliveries counted, i.e. usPerDelivery(cpuPct, received / meteredSeconds).
   */
  usPerDelivery: number
  userPct: number
  sysPct: number
  /** The same split per delivery: user space (building frames, the loop) and the kernel (the writes). */
  userUsPerDelivery: number
  sysUsPerDelivery: number
  /** From the floor's own getrusage over the run, divided by frames written: finer than /proc's clock ticks. */
  rusageUsPerDelivery: number
  /** Share of the floor's CPU (getrusage) spent in the kernel, 0..1. */
  sysShare: number
  /** Wall seconds CpuMeter covered: from the run command to the floor's report (about `seconds` + 5 ms). */
  meteredSeconds: number
  /** How far the floor's run overran `seconds` (it could not keep to its schedule: a crowded machine). */
  lateMs: number
  latency: Summary
  syncLatency: Summary
  chatLatency: Summary
  receiverCpu: number[]
  receivers: number
  writeErrors: number
  /** Short writes and EAGAIN the floor met (it then waited and wrote the rest: nothing lost). */
  shortWrites: number
  floor: FloorReport
}

export interface FloorOptions {
  binary: string
  rooms: number
  viewers: number
  syncHz: number
  chatHz: number
  seconds: number
  syncBytes?: number
  chatBytes?: number
  /** The bench's load-generator workers; more are started (and stopped) when the sockets need them. */
  workers: RpcClient[]
  /** Nice value of the floor and of the extra workers (the bench's --nice, as for the servers). */
  nice?: number
  log?: (line: string) => void
}

/** The floor process: its stdout as lines. */
class FloorProcess {
  private readonly lines: string[] = []
  private readonly waiters: Array<(line: string | null) => void> = []
  private ended = false
  private stderr = ''
  readonly exited: Promise<void>
  private readonly killOnExit = (): void => { this.child.kill('SIGKILL') }

  constructor (readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const waiter = this.waiters.shift()
      if (waiter !== undefined) waiter(line)
      else this.lines.push(line)
    })
    child.stderr!.on('data', (chunk: Buffer) => { this.stderr = (this.stderr + chunk.toString('utf8')).slice(-2000) })
    this.exited = new Promise((resolve) => {
      child.on('exit', () => {
        this.ended = true
        for (const w of this.waiters.splice(0)) w(null)
        process.removeListener('exit', this.killOnExit)
        resolve()
      })
    })
    // The floor also dies with the bench (PR_SET_PDEATHSIG) and when its stdin closes; this covers a normal exit.
    process.on('exit', this.killOnExit)
  }

  static start (binary: string, nice: number): FloorProcess {
    const child = spawn(binary, [], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    if (nice !== 0 && child.pid !== undefined) setPriority(child.pid, nice)
    return new FloorProcess(child)
  }

  async line (timeoutMs: number, what: string): Promise<string> {
    const queued = this.lines.shift()
    if (queued !== undefined) return queued
    if (this.ended) throw new Error(`floor exited before ${what}${this.stderr === '' ? '' : `: ${this.stderr.trim()}`}`)
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`floor: no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
      this.waiters.push((line) => {
        clearTimeout(timer)
        if (line === null) reject(new Error(`floor exited before ${what}${this.stderr === '' ? '' : `: ${this.stderr.trim()}`}`))
        else resolve(line)
      })
    })
  }

  send (line: string): void {
    this.child.stdin!.write(`${line}\n`)
  }

  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.stdin!.end()
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 2000)
    await this.exited
    clearTimeout(timer)
  }
}

/** How many receiving processes `sockets` need. */
export function receiversFor (sockets: number): number {
  return Math.max(sockets >= SPREAD_FROM ? 2 : 1, Math.ceil(sockets / SOCKETS_PER_RECEIVER))
}

/** Timed frames received since the last reset (all workers). */
/**
 * One timed run of the floor for a room shape. Leaves the workers with no connection open and targeted at
 * the floor's (closed) port: the caller targets them again (`target`) before the next server.
 */
export async function runFloor (options: FloorOptions): Promise<FloorRun> {
  const syncBytes = options.syncBytes ?? 200
  const chatBytes = options.chatBytes ?? 200
  const { rooms, viewers, syncHz, chatHz, seconds } = options
  const sockets = rooms * (viewers + 1)
  const log = options.log ?? (() => {})
  const needed = receiversFor(sockets)
  const extra = needed > options.workers.length ? startWorkers(needed - options.workers.length, options.nice ?? 0) : []
  const workers = [...options.workers, ...extra]
  const floor = FloorProcess.start(options.binary, options.nice ?? 0)
  try {
    const listening = /^listening (\d+)$/.exec(await floor.line(10_000, 'listening line'))
    if (listening === null) throw new Error('floor: unexpected first line')
    const port = Number(listening[1])
    await Promise.all(workers.map(async (w) => await w.call('target', { kind: 'ours', port })))

    // Hosts (one per room) on the first worker, viewers spread over all, as fanout's populate does.
    const prefix = `floor${rooms}x${viewers}`
    const roomIds = await workers[0]!.call<string[]>('hosts', { count: rooms, prefix, concurrency: 50 }, 600_000)
    const g = workers.length
    await Promise.all(workers.map(async (worker, j) => {
      const base = Math.floor(viewers / g)
      const count = base + (j < viewers % g ? 1 : 0)
      const from = j * base + Math.min(j, viewers % g)
      const assignments = count === 0 ? [] : roomIds.map((roomId) => ({ roomId, count, from }))
      if (assignments.length > 0) await worker.call('viewers', { assignments, prefix, concurrency: 50 }, 900_000)
    }))
    log(`  floor ${rooms}x${viewers}: ${sockets} sockets on ${g} receiver process${g === 1 ? '' : 'es'}`)

    await Promise.all(workers.map(async (w) => await w.call('reset')))
    const cpu = new CpuMeter(() => [floor.child.pid ?? -1])
    const receiverMeters = workers.map((w) => new CpuMeter(() => [w.child.pid ?? -1]))
    const t0 = performance.now()
    cpu.start()
    for (const m of receiverMeters) m.start()
    floor.send(`run ${rooms} ${viewers} ${syncHz} ${chatHz} ${seconds} ${syncBytes} ${chatBytes}`)
    const answer = JSON.parse(await floor.line(seconds * 1000 + 90_000, 'run report')) as FloorReport | { error: string }
    const cpuPct = cpu.stop()
    const meteredSeconds = (performance.now() - t0) / 1000
    const receiverCpu = receiverMeters.map((m) => m.stop())
    if ('error' in answer) throw new Error(`floor: ${answer.error}`)
    const report = answer

    const expected = report.syncs * viewers + report.chats * (viewers + 1)
    await awaitDeliveries(workers, expected)
    const { sync, chat, all } = await collectLatencies(workers)
    const perSec = all.count / seconds
    // CPU per delivery is CPU time over the metered window divided by deliveries. The window is the floor's whole
    // run, which lasts longer than `seconds` when a crowded machine leaves the floor behind its schedule; dividing
    // the window's CPU percentage by deliveries per nominal second would then understate the cost.
    const meteredPerSec = all.count / meteredSeconds
    const rusageUs = report.userUs + report.sysUs
    return {
      rooms,
      viewers,
      syncHz,
      chatHz,
      seconds,
      syncBytes,
      chatBytes,
      sockets,
      expected,
      received: all.count,
      deliveredRatio: expected === 0 ? 1 : Math.round((all.count / expected) * 10000) / 10000,
      deliveriesPerSec: Math.round(perSec),
      cpuPct,
      usPerDelivery: usPerDelivery(cpuPct, meteredPerSec),
      userPct: cpu.split.userPct,
      sysPct: cpu.split.systemPct,
      userUsPerDelivery: usPerDelivery(cpu.split.userPct, meteredPerSec),
      sysUsPerDelivery: usPerDelivery(cpu.split.systemPct, meteredPerSec),
      rusageUsPerDelivery: report.frames > 0 ? Math.round((rusageUs / report.frames) * 100) / 100 : NaN,
      sysShare: rusageUs > 0 ? Math.round((report.sysUs / rusageUs) * 1000) / 1000 : NaN,
      meteredSeconds: Math.round(meteredSeconds * 1000) / 1000,
      lateMs: Math.max(0, Math.round(report.wallUs / 1000 - seconds * 1000)),
      latency: all.summaryMs(),
      syncLatency: sync.summaryMs(),
      chatLatency: chat.summaryMs(),
      receiverCpu,
      receivers: g,
      writeErrors: report.writeErrors,
      shortWrites: report.shortWrites + report.eagain,
      floor: report
    }
  } finally {
    await Promise.all(workers.map(async (w) => await w.call('closeAll', {}, 120_000).catch(() => {})))
    await floor.stop()
    if (extra.length > 0) await stopWorkers(extra)
  }
}
