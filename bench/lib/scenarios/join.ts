/** Join storm: joins into existing rooms with a fixed number in flight. */
import { Histogram, type HistogramJson, type Summary } from '../histogram.js'
import { CpuMeter, pidsNamed } from '../proc.js'
import { generatorMeter, type Context } from './context.js'

export interface JoinResult {
  joins: number
  errors: number
  firstError?: string
  rooms: number
  concurrency: number
  joinsPerSec: number
  latency: Summary
  serverCpu: number
  databaseCpu: number | null
  generatorCpu: number[]
}

export async function joinStorm (ctx: Context): Promise<JoinResult> {
  const { options } = ctx
  const rooms = Math.ceil(options.joins / options.joinRoomSize)
  const w0 = ctx.workers[0]!
  const roomIds = await w0.call<string[]>('hosts', { count: rooms, prefix: 'storm', concurrency: 50 }, 600_000)
  await w0.call('spare', { count: options.joins, prefix: 'storm', concurrency: 100 }, 600_000)
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const dbCpu = ctx.postgres && ctx.server.kind === 'ours' ? new CpuMeter(() => pidsNamed('postgres')) : undefined
  const genCpu = generatorMeter(ctx)
  serverCpu.start()
  dbCpu?.start()
  for (const m of genCpu) m.start()
  const r = await w0.call<{ latency: HistogramJson, durationMs: number, joins: number, errors: number, firstError?: string }>('joinStorm', { roomIds, concurrency: options.joinConcurrency }, 900_000)
  return {
    joins: r.joins,
    errors: r.errors,
    ...(r.firstError === undefined ? {} : { firstError: r.firstError }),
    rooms,
    concurrency: options.joinConcurrency,
    joinsPerSec: Math.round(r.joins / (r.durationMs / 1000)),
    latency: Histogram.from(r.latency).summaryMs(),
    serverCpu: serverCpu.stop(),
    databaseCpu: dbCpu === undefined ? null : dbCpu.stop(),
    generatorCpu: genCpu.map((m) => m.stop())
  }
}
