/**
 * What every scenario gets: the server under test, the load-generator workers, the options. Every scenario
 * leaves no connection behind (the caller closes and settles after each).
 */
import type { Options } from '../options.js'
import { CpuMeter } from '../proc.js'
import type { RpcClient } from '../rpc.js'
import type { RunningServer } from '../targets.js'

export interface Context {
  server: RunningServer
  workers: RpcClient[]
  options: Options
  /** True when our server runs on Postgres (its backends' CPU is measured too). */
  postgres: boolean
  log: (line: string) => void
}

/** Server CPU time per delivery, in microseconds, from a CPU percentage and a delivery rate. */
export const usPerDelivery = (cpuPct: number, perSec: number): number => perSec > 0 ? Math.round((cpuPct / 100) * 1e6 / perSec * 100) / 100 : NaN

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
export const mb = (bytes: number): number => Math.round(bytes / 1024 / 1024 * 10) / 10

export function generatorMeter (ctx: Context): CpuMeter[] {
  return ctx.workers.map((w) => new CpuMeter(() => [w.child.pid ?? -1]))
}
