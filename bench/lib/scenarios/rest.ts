/** REST throughput with autocannon (our server and the node:http baseline). */
import type { TargetKind } from '../clients.js'
import { CpuMeter } from '../proc.js'
import { generatorMeter, type Context } from './context.js'

export interface RestRun { rps: number, p50: number, p99: number, max: number, total: number, non2xx: number, errors: number }
export interface RestResult {
  connections: number
  seconds: number
  post: RestRun
  get: RestRun
  serverCpu: number
  generatorCpu: number[]
}

export async function rest (ctx: Context, kind: TargetKind): Promise<RestResult | { skipped: string }> {
  if (kind === 'socketio') return { skipped: 'Socket.IO has no REST API; its column is empty' }
  if (kind === 'colyseus') return { skipped: 'Colyseus has no REST API (only its matchmaker); its column is empty' }
  const { options } = ctx
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const genCpu = generatorMeter(ctx)
  serverCpu.start()
  for (const m of genCpu) m.start()
  const r = await ctx.workers[0]!.call<{ post: RestRun, get: RestRun }>('rest', { port: ctx.server.port, durationS: options.restSeconds, connections: options.restConnections }, options.restSeconds * 2000 + 120_000)
  return { connections: options.restConnections, seconds: options.restSeconds, ...r, serverCpu: serverCpu.stop(), generatorCpu: genCpu.map((m) => m.stop()) }
}

