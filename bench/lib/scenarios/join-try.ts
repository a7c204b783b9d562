/**
 * The join storm alone, several runs against our server, outside run.ts (development):
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *     npx tsx --conditions=watch-party-source bench/lib/scenarios/join-try.ts [runs] [out.json]
 * Flags for the options (e.g. "--joins 2000 --profile") go in JOIN_TRY_FLAGS. A fresh database (or PGlite
 * directory) per invocation; the server's own environment (DATABASE_POOL_MAX, …) passes through.
 * JOIN_TRY_PROFILE=DIR writes a CPU profile of the server over each timed storm (bench/profile-summary.ts reads it).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'
import { parseOptions } from '../options.js'
import { killAllChildren } from '../proc.js'
import { prepareDatabase, settle, startServer, stopServer } from '../targets.js'
import { startWorkers, stopWorkers } from '../workers.js'
import { joinRuns, type StormHooks } from './join.js'

/** With JOIN_TRY_PROFILE=DIR: a CPU profile of the server over each timed storm (through its inspector), DIR/join-N.cpuprofile. */
function profileHooks (inspector: string | undefined, dir: string | undefined): StormHooks | undefined {
  if (dir === undefined || inspector === undefined) return undefined
  mkdirSync(dir, { recursive: true })
  let socket: WebSocket | undefined
  let id = 0
  let n = 0
  const call = async (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const ws = socket!
    const mine = ++id
    return await new Promise((resolve, reject) => {
      const onMessage = (data: WebSocket.RawData): void => {
        const message = JSON.parse(data.toString()) as { id?: number, result?: Record<string, unknown>, error?: { message: string } }
        if (message.id !== mine) return
        ws.off('message', onMessage)
        if (message.error !== undefined) reject(new Error(message.error.message))
        else resolve(message.result ?? {})
      }
      ws.on('message', onMessage)
      ws.send(JSON.stringify({ id: mine, method, params }))
    })
  }
  return {
    before: async () => {
      socket = new WebSocket(inspector)
      await new Promise<void>((resolve, reject) => { socket!.once('open', () => { resolve() }); socket!.once('error', reject) })
      await call('Profiler.enable')
      await call('Profiler.setSamplingInterval', { interval: 200 })
      await call('Profiler.start')
    },
    after: async () => {
      const { profile } = await call('Profiler.stop')
      writeFileSync(join(dir, `join-${++n}.cpuprofile`), JSON.stringify(profile))
      socket?.close()
    }
  }
}

const runs = Number(process.argv[2] ?? '5')
const out = process.argv[3]
const options = parseOptions(process.env.JOIN_TRY_FLAGS?.split(' ').filter((s) => s !== '') ?? [])
const log = (line: string): void => { console.log(line) }
process.on('exit', killAllChildren)

const database = await prepareDatabase()
const workers = startWorkers(1, options.nice)
try {
  const server = await startServer('ours', options, database)
  try {
    await Promise.all(workers.map(async (w) => await w.call('target', { kind: 'ours', port: server.port })))
    const result = await joinRuns({ server, workers, options, postgres: database.env.DATABASE_URL !== undefined, log }, runs, profileHooks(server.inspector, process.env.JOIN_TRY_PROFILE))
    await Promise.all(workers.map(async (w) => await w.call('closeAll')))
    await settle(server)
    log(`median of ${runs}: p50 ${result.median.p50} / p99 ${result.median.p99} ms, ${result.median.joinsPerSec} joins/s, ${result.median.serverUsPerJoin} µs/join; p99s ${result.p99s.join(', ')}`)
    if (out !== undefined) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
  } finally {
    await stopServer(server)
  }
} finally {
  await stopWorkers(workers)
  await database.cleanup()
}
