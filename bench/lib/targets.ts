/**
 * Starting and stopping the three servers, each a separate process on 127.0.0.1 with the parent guard and
 * an inspector on a loopback port (for heap readings). Our server gets every limit raised so that the
 * bench measures throughput, not the limits; a fresh Postgres database (or a temp PGlite directory) per run.
 */
import type { ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { INT_VARIABLES } from '../../src/config.js'
import type { TargetKind } from './clients.js'
import { inspectorUrl } from './inspector.js'
import type { Options } from './options.js'
import { freePort, ROOT, spawnNode, stopChild } from './proc.js'

export const TARGET_LABELS: Record<TargetKind, string> = { ours: 'ours', bare: 'bare ws', socketio: 'Socket.IO', colyseus: 'Colyseus' }

const SCRIPTS: Record<TargetKind, string> = {
  ours: 'src/server.ts',
  bare: 'bench/servers/bare-ws.ts',
  socketio: 'bench/servers/socketio.ts',
  colyseus: 'bench/servers/colyseus.ts'
}

export interface RunningServer {
  kind: TargetKind
  port: number
  child: ChildProcess
  pid: number
  inspector: string | undefined
  log: WriteStream
}

export interface DatabaseSetup {
  /** What our server is given: DATABASE_URL or DATA_DIR. */
  env: Record<string, string>
  description: string
  cleanup: () => Promise<void>
}

/**
 * With DATABASE_URL: a fresh database beside the given one (dropped at the end), so that rooms of earlier
 * runs are not read back at start; falls back to the given database when it may not create one.
 * Without: embedded PGlite in a temp directory.
 */
export async function prepareDatabase (): Promise<DatabaseSetup> {
  const url = process.env.DATABASE_URL
  if (url === undefined || url.trim() === '') {
    const dir = mkdtempSync(join(tmpdir(), 'watch-party-bench-'))
    return {
      env: { DATA_DIR: dir },
      description: 'embedded PGlite (temp DATA_DIR)',
      cleanup: async () => { rmSync(dir, { recursive: true, force: true }) }
    }
  }
  const name = `watch_party_bench_${process.pid}_${Date.now()}`
  const admin = new pg.Client({ connectionString: url })
  try {
    await admin.connect()
    await dropAbandoned(admin)
    await admin.query(`CREATE DATABASE "${name}"`)
  } catch (err) {
    await admin.end().catch(() => {})
    console.warn(`bench: could not create a fresh database (${(err as Error).message}); using DATABASE_URL as is`)
    return { env: { DATABASE_URL: url }, description: 'Postgres (DATABASE_URL)', cleanup: async () => {} }
  }
  await admin.end()
  const fresh = new URL(url)
  fresh.pathname = `/${name}`
  return {
    env: { DATABASE_URL: fresh.toString() },
    description: `Postgres (fresh database ${name} beside DATABASE_URL)`,
    cleanup: async () => {
      const dropper = new pg.Client({ connectionString: url })
      try {
        await dropper.connect()
        await dropper.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } catch (err) {
        console.warn(`bench: could not drop ${name}: ${(err as Error).message}`)
      } finally {
        await dropper.end().catch(() => {})
      }
    }
  }
}

/** Drops the databases of earlier runs on this machine whose bench process is gone (killed before cleanup). */
async function dropAbandoned (admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'watch\\_party\\_bench\\_%'")
  for (const { datname } of rows) {
    const pid = Number(/^watch_party_bench_(\d+)_\d+$/.exec(datname)?.[1])
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue
    await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => {})
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Our server's environment: every rate, size and count limit at its maximum (so that the flood limits of the
 * abuse protections do not throttle the load), big rooms allowed, no reconnect grace (disconnects settle at once).
 */
export function oursEnv (options: Options, database: DatabaseSetup): Record<string, string> {
  const env: Record<string, string> = {}
  for (const rule of Object.values(INT_VARIABLES) as Array<{ name: string, max: number }>) {
    if (rule.name === 'DATABASE_POOL_MAX') continue
    if (/RATE_LIMIT|_PER_|^MAX_|_MAX$|BURST|FLOOD/.test(rule.name)) env[rule.name] = String(rule.max)
  }
  return {
    ...env,
    ...database.env,
    NODE_ENV: 'development',
    LOG_LEVEL: options.logLevel,
    HEARTBEAT_MS: String(options.heartbeatMs),
    DISCONNECT_GRACE_MS: '0',
    // A write queued behind others of its room may wait this long before SERVICE_UNAVAILABLE: on a loaded
    // 2-core machine joins of 19,000 connections wait longer than the production default.
    STORE_WAIT_MS: '60000'
  }
}

export async function startServer (kind: TargetKind, options: Options, database: DatabaseSetup): Promise<RunningServer> {
  const port = await freePort()
  const logDir = resolve(ROOT, options.outDir, 'logs')
  mkdirSync(logDir, { recursive: true })
  const log = createWriteStream(join(logDir, `${kind}.log`))
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    HEARTBEAT_MS: String(options.heartbeatMs),
    ...(kind === 'ours' ? oursEnv(options, database) : {})
  }
  if (kind !== 'ours') delete env.DATABASE_URL
  const nodeArgs = ['--inspect=127.0.0.1:0']
  if (options.profile) {
    const dir = resolve(ROOT, options.outDir, 'profiles')
    mkdirSync(dir, { recursive: true })
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${kind}.cpuprofile`)
  }
  let head = ''
  const child = spawnNode({
    script: SCRIPTS[kind],
    env,
    nodeArgs,
    nice: options.nice,
    output: (chunk) => {
      if (head.length < 65_536) head += chunk.toString('utf8')
      log.write(chunk)
    }
  })
  const server: RunningServer = { kind, port, child, pid: child.pid ?? -1, inspector: undefined, log }
  const deadline = Date.now() + 180_000
  const readiness = kind === 'ours' ? '/readyz' : '/healthz'
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${TARGET_LABELS[kind]} exited during start (${child.exitCode ?? child.signalCode}):\n${head.slice(-2000)}`)
    }
    if (Date.now() > deadline) {
      await stopServer(server)
      throw new Error(`${TARGET_LABELS[kind]} was not ready within 180 s:\n${head.slice(-2000)}`)
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}${readiness}`, { signal: AbortSignal.timeout(2000) })
      if (res.ok) break
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  server.inspector = inspectorUrl(head)
  return server
}

export async function stopServer (server: RunningServer): Promise<void> {
  await stopChild(server.child, 15_000)
  await new Promise<void>((resolve) => { server.log.end(() => { resolve() }) })
}

/** Reads gauges from our server's /metrics (undefined for the baselines, which have none). */
export async function metricsGauges (server: RunningServer, names: string[]): Promise<Record<string, number> | undefined> {
  if (server.kind !== 'ours') return undefined
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  const out: Record<string, number> = {}
  for (const name of names) {
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    if (match !== null) out[name] = Number(match[1])
  }
  return out
}

/**
 * Waits until a server has nothing left of the previous scenario: our server writes the departures of
 * closed connections to the database, which must not overlap the next measurement.
 */
export async function settle (server: RunningServer, timeoutMs = 120_000): Promise<void> {
  if (server.kind !== 'ours') {
    await new Promise((resolve) => setTimeout(resolve, 300))
    return
  }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const gauges = await metricsGauges(server, ['ws_connections', 'room_participants'])
    if (gauges === undefined || gauges.ws_connections === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      return
    }
    if (gauges.ws_connections === 0 && (gauges.room_participants ?? 0) === 0) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  console.warn(`bench: ${TARGET_LABELS[server.kind]} did not settle within ${timeoutMs} ms; going on`)
}

export { ROOT }
