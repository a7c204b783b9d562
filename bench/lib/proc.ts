/**
 * Child processes of the bench and what /proc says about them. Every child is registered here and killed
 * when the bench exits, whichever way it exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { setPriority } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const GUARD = pathToFileURL(fileURLToPath(new URL('./parent-guard.ts', import.meta.url))).href
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The installed version of a package (the bench reports what it compared), or '?' when it is not installed. */
export function versionOf (pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

const children = new Set<ChildProcess>()

export interface SpawnOptions {
  script: string
  env: Record<string, string | undefined>
  nodeArgs?: string[]
  ipc?: boolean
  /** Lines of stdout/stderr go here (a log file stream or nothing). */
  output?: (chunk: Buffer) => void
  /** Scheduling priority (nice value, -20..19); negative values need root. */
  nice?: number
}

/** Starts `node --import tsx <script>` with the parent guard preloaded. */
export function spawnNode (options: SpawnOptions): ChildProcess {
  const child = spawn(process.execPath, ['--conditions=watch-party-source', '--import', 'tsx', '--import', GUARD, ...(options.nodeArgs ?? []), options.script], {
    cwd: ROOT,
    env: options.env as NodeJS.ProcessEnv,
    stdio: options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe']
  })
  children.add(child)
  child.on('exit', () => { children.delete(child) })
  if (options.nice !== undefined && options.nice !== 0 && child.pid !== undefined) setPriority(child.pid, options.nice)
  child.stdout?.on('data', (c: Buffer) => options.output?.(c))
  child.stderr?.on('data', (c: Buffer) => options.output?.(c))
  return child
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopChild (child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
  await gone
  clearTimeout(timer)
}

/** Synchronous last resort: used from process 'exit'. */
export function killAllChildren (): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

let clockTicks: number | undefined
function ticksPerSecond (): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** CPU seconds a process has spent in user space and in the kernel (system), or NaN for both when it is gone. */
export function cpuTimes (pid: number): { user: number, system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { user: Number(fields[11]) / ticksPerSecond(), system: Number(fields[12]) / ticksPerSecond() }
  } catch {
    return { user: NaN, system: NaN }
  }
}

/** CPU seconds (user + system) a process has used, or NaN when it is gone. */
export function cpuSeconds (pid: number): number {
  const { user, system } = cpuTimes(pid)
  return user + system
}

/** Resident set size in bytes, or NaN. */
export function rssBytes (pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /VmRSS:\s+(\d+) kB/.exec(status)
    return match === null ? NaN : Number(match[1]) * 1024
  } catch {
    return NaN
  }
}

/** Pids of every process whose command name is `name` (e.g. the Postgres backends). */
export function pidsNamed (name: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === name) pids.push(Number(entry))
    } catch {
      // the process ended while we looked
    }
  }
  return pids
}

/**
 * CPU used by a set of processes between `start()` and `stop()`, in percent of one core; after `stop()`,
 * `split` tells how much of it was user space and how much the kernel (system time: for a fan-out, mostly
 * the TCP writes).
 */
export class CpuMeter {
  private startCpu = { user: 0, system: 0 }
  private startWall = 0
  split = { userPct: NaN, systemPct: NaN }
  /** The metered window's length in seconds, after `stop()`. */
  seconds = NaN
  constructor (private readonly pids: () => number[]) {}

  start (): void {
    this.startCpu = this.total()
    this.startWall = performance.now()
  }

  stop (): number {
    const wall = (performance.now() - this.startWall) / 1000
    this.seconds = wall
    const end = this.total()
    const pct = (seconds: number): number => wall <= 0 ? NaN : Math.round((seconds / wall) * 1000) / 10
    this.split = { userPct: pct(end.user - this.startCpu.user), systemPct: pct(end.system - this.startCpu.system) }
    return pct(end.user + end.system - this.startCpu.user - this.startCpu.system)
  }

  private total (): { user: number, system: number } {
    const sum = { user: 0, system: 0 }
    for (const pid of this.pids()) {
      const t = cpuTimes(pid)
      if (Number.isNaN(t.user)) continue
      sum.user += t.user
      sum.system += t.system
    }
    return sum
  }
}
