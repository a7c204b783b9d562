/**
 * The real server as a child process (`node --conditions=watch-party-source --import tsx src/server.ts`), for tests of what only a process
 * has: signals, kill -9, restarts on the same database, several processes on one database.
 *
 * Contracts:
 * - `startServer` resolves once the child logged that it listens (PORT=0: the kernel picks a free port, the
 *   log line names it, so there is no race for ports); it rejects with the child's output if the child exits
 *   or does not listen within the bound.
 * - Every child is killed with SIGKILL in teardown if it still runs, and teardown waits for it to exit.
 * - `serverDatabase` gives one test file a fresh database a server can be restarted on: a new Postgres
 *   database when DATABASE_URL is set (dropped in teardown), else a PGlite data directory in a temp folder
 *   (removed in teardown). PGlite is single-process: open it in the test only while no server runs on it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDatabase, type DatabaseHandle } from '../../src/db/client.js'
import { createPostgresDatabase } from './database.js'

interface Teardown { teardown (fn: () => Promise<void> | void): void }

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export type ServerDatabase =
  | { kind: 'postgres', url: string }
  | { kind: 'pglite', dataDir: string }

/** A fresh, empty database for this test file (servers migrate it when they start). */
export async function serverDatabase (t: Teardown): Promise<ServerDatabase> {
  const serverUrl = process.env.DATABASE_URL
  if (serverUrl !== undefined && serverUrl !== '') return { kind: 'postgres', url: await createPostgresDatabase(t, serverUrl) }
  const dir = mkdtempSync(join(tmpdir(), 'wp-ops-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return { kind: 'pglite', dataDir: join(dir, 'data') }
}

/**
 * Opens the database from the test process, closed in teardown (or earlier by the caller).
 * On PGlite only while no server process has it open.
 */
export async function openServerDatabase (t: Teardown, database: ServerDatabase): Promise<DatabaseHandle> {
  const handle = database.kind === 'postgres'
    ? await openDatabase({ databaseUrl: database.url, dataDir: 'memory://', poolMax: 2 })
    : await openDatabase({ databaseUrl: undefined, dataDir: database.dataDir })
  t.teardown(async () => { await handle.close() })
  return handle
}

export interface LogLine {
  level: number
  time: number
  msg?: string
  [key: string]: unknown
}

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** Date.now() in the test process when the exit was observed. */
  at: number
}

export interface HttpAnswer {
  status: number
  /** The parsed JSON body (tests read any field of it), the raw text when it is not JSON, null when empty. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
  /** The response headers, lower-case names. */
  headers: Record<string, string>
}

export interface ServerOptions {
  database: ServerDatabase
  /** Extra environment for the child (DISCONNECT_GRACE_MS, …); DATABASE_URL / DATA_DIR come from `database`. */
  env?: Record<string, string>
  /** How long the child may take to listen; PGlite start-up costs a few seconds. */
  startTimeoutMs?: number
  /** Spawn only; the caller awaits `listening` itself (concurrent starts). */
  wait?: boolean
}

export class ServerProcess {
  /** Every JSON log line the child wrote to stdout, in order. */
  readonly logs: LogLine[] = []
  /** Everything else it wrote (stderr, non-JSON stdout), for failure messages. */
  readonly output: string[] = []
  readonly exited: Promise<Exit>
  /** Resolves with the port once the child listens. */
  readonly listening: Promise<number>
  exit: Exit | undefined
  port = 0
  /** Date.now() when spawned. */
  readonly spawnedAt = Date.now()
  private readonly logWaiters = new Set<{ match: (line: LogLine) => boolean, resolve: (line: LogLine) => void }>()

  constructor (private readonly child: ChildProcess, readonly name: string, startTimeoutMs: number) {
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': by then every line the child wrote has been read.
      child.once('close', (code, signal) => {
        this.exit = { code, signal, at: Date.now() }
        resolve(this.exit)
      })
    })
    let buffered = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk
      let newline = buffered.indexOf('\n')
      while (newline >= 0) {
        this.takeLine(buffered.slice(0, newline))
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf('\n')
      }
    })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.output.push(chunk) })
    this.listening = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${name} did not listen within ${startTimeoutMs} ms\n${this.describe()}`)) }, startTimeoutMs)
      void this.exited.then((exit) => {
        clearTimeout(timer)
        reject(new Error(`${name} exited (code ${String(exit.code)}, signal ${String(exit.signal)}) before listening\n${this.describe()}`))
      })
      void this.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('Server listening at'), startTimeoutMs + 1000)
        .then((line) => {
          clearTimeout(timer)
          const port = Number(/:(\d+)$/.exec(line.msg ?? '')?.[1])
          this.port = port
          resolve(port)
        }, () => {})
    })
    this.listening.catch(() => {})
  }

  get pid (): number {
    return this.child.pid ?? -1
  }

  get baseUrl (): string {
    return `http://127.0.0.1:${this.port}`
  }

  get wsUrl (): string {
    return `ws://127.0.0.1:${this.port}/ws`
  }

  /** Sends a signal; a no-op once the child exited. */
  kill (signal: NodeJS.Signals): void {
    if (this.exit === undefined) this.child.kill(signal)
  }

  /** The first log line (already written or still to come) that matches. */
  async waitForLog (match: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.logs.find(match)
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer)
          resolve(line)
        }
      }
      const timer = setTimeout(() => {
        this.logWaiters.delete(waiter)
        reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms\n${this.describe()}`))
      }, timeoutMs)
      this.logWaiters.add(waiter)
      // A process that exited writes no more lines: give up at once (its timer would hold the test file open).
      void this.exited.then(() => {
        if (!this.logWaiters.delete(waiter)) return
        clearTimeout(timer)
        reject(new Error(`${this.name}: exited without the log line waited for\n${this.describe()}`))
      })
    })
  }

  /** A REST call as `userId` (development identity); the body is parsed when it is JSON. */
  async http (method: string, path: string, options: { userId?: string, body?: unknown } = {}): Promise<HttpAnswer> {
    const headers: Record<string, string> = {}
    if (options.userId !== undefined) headers['x-user-id'] = options.userId
    if (options.body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(15_000)
    })
    const text = await response.text()
    let body: unknown = text
    try {
      body = text === '' ? null : JSON.parse(text)
    } catch {
      // Not JSON: keep the text.
    }
    return { status: response.status, body, headers: Object.fromEntries(response.headers.entries()) }
  }

  /** The child's log and output, for assertion messages. */
  describe (): string {
    const lines = this.logs.slice(-30).map((l) => JSON.stringify(l))
    return [`--- ${this.name} (pid ${this.pid}) log tail ---`, ...lines, ...this.output.slice(-20)].join('\n')
  }

  private takeLine (raw: string): void {
    if (raw.trim() === '') return
    let line: LogLine
    try {
      line = JSON.parse(raw) as LogLine
    } catch {
      this.output.push(raw)
      return
    }
    this.logs.push(line)
    for (const waiter of [...this.logWaiters]) {
      if (waiter.match(line)) {
        this.logWaiters.delete(waiter)
        waiter.resolve(line)
      }
    }
  }
}

let started = 0
const running = new Set<ServerProcess>()
// A test process that dies without its teardown (a tap timeout) must not leave servers behind.
process.once('exit', () => { for (const server of running) server.kill('SIGKILL') })

/** Spawns the server on `database` and (unless `wait: false`) waits until it listens. */
export async function startServer (t: Teardown, options: ServerOptions): Promise<ServerProcess> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    // The child is a plain server: no test-runner loaders, no inherited database choice.
    if (value !== undefined && key !== 'NODE_OPTIONS' && key !== 'DATABASE_URL' && key !== 'DATA_DIR' && !key.startsWith('TAP')) env[key] = value
  }
  Object.assign(env, {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    ...(options.database.kind === 'postgres' ? { DATABASE_URL: options.database.url } : { DATA_DIR: options.database.dataDir }),
    ...options.env
  })
  const child = spawn(process.execPath, ['--conditions=watch-party-source', '--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const server = new ServerProcess(child, `server#${++started}`, options.startTimeoutMs ?? 60_000)
  running.add(server)
  void server.exited.then(() => { running.delete(server) })
  t.teardown(async () => {
    server.kill('SIGKILL')
    await server.exited
  })
  if (options.wait !== false) await server.listening
  return server
}
