/** Saturation: the highest delivery rate a server keeps under the latency line. */
import { measure, populate, quiesce } from './fanout.js'
import type { Context } from './context.js'

export interface SaturationStep {
  syncHz: number
  deliveriesPerSec: number
  p99: number
  deliveredRatio: number
  serverCpu: number
  generatorCpu: number[]
  sendLagP99: number
  serverUsPerDelivery: number
  pass: boolean
}

export interface SaturationResult {
  rooms: number
  viewers: number
  p99LimitMs: number
  best: SaturationStep | null
  firstFailure: SaturationStep | null
  /**
   * Deliveries one fully busy core would make at the cost per delivery measured in the busiest step that
   * delivered everything: a capacity that does not depend on what else the shared machine was running.
   */
  capacityPerCore: number | null
  steps: SaturationStep[]
}

/** Doubles the sync rate per room until p99 passes the line (or deliveries go missing), then bisects. */
export async function saturation (ctx: Context): Promise<SaturationResult> {
  const { options } = ctx
  const shape = options.saturation
  await populate(ctx, shape, `sat${shape.rooms}x${shape.viewers}`)
  const steps: SaturationStep[] = []
  const step = async (syncHz: number): Promise<SaturationStep> => {
    const r = await measure(ctx, shape, syncHz, options.chatHz, options.saturationStepSeconds)
    const s: SaturationStep = {
      syncHz: Math.round(syncHz * 10) / 10,
      deliveriesPerSec: r.deliveriesPerSec,
      p99: r.latency.p99,
      deliveredRatio: r.deliveredRatio,
      serverCpu: r.serverCpu,
      generatorCpu: r.generatorCpu,
      sendLagP99: r.sendLag.p99,
      serverUsPerDelivery: r.serverUsPerDelivery,
      pass: r.latency.p99 <= options.saturationP99Ms && r.deliveredRatio >= 0.99
    }
    steps.push(s)
    ctx.log(`    ${s.syncHz} Hz/room: ${s.deliveriesPerSec} deliveries/s, p99 ${s.p99} ms, delivered ${(s.deliveredRatio * 100).toFixed(1)} %, server CPU ${s.serverCpu} % (${s.serverUsPerDelivery} µs/delivery), generator CPU ${s.generatorCpu.join('+')} % ${s.pass ? 'ok' : 'OVER'}`)
    await quiesce(ctx)
    return s
  }
  // On a shared machine one step can fail from someone else's burst: a failing step is run once more.
  const confirmedStep = async (syncHz: number): Promise<SaturationStep> => {
    const s = await step(syncHz)
    return s.pass || !options.saturationRetry ? s : await step(syncHz)
  }
  // Doubling goes on past a failing rate and stops after two failing rates in a row, never below
  // saturationMinHz: on a shared machine a low rate can fail from someone else's burst, and the capacity
  // comparison wants every server measured at the same busy rates.
  let hz = options.syncHz
  let best: SaturationStep | null = null
  let failure: SaturationStep | null = null
  let failuresInARow = 0
  for (let i = 0; i < options.saturationMaxSteps && (failuresInARow < 2 || hz <= options.saturationMinHz); i++) {
    const s = await confirmedStep(hz)
    if (s.pass) {
      best = s
      failure = null
      failuresInARow = 0
    } else {
      failure ??= s
      failuresInARow++
    }
    hz *= options.saturationFactor
  }
  for (let i = 0; i < options.saturationRefine && best !== null && failure !== null; i++) {
    const s = await confirmedStep(Math.sqrt(best.syncHz * failure.syncHz))
    if (s.pass) best = s
    else failure = s
  }
  if (best !== null) {
    // The highest passing throughput (a refinement step may pass with fewer deliveries than an earlier one).
    best = steps.filter((s) => s.pass).reduce((a, b) => (b.deliveriesPerSec > a.deliveriesPerSec ? b : a), best)
  }
  const complete = steps.filter((s) => s.deliveredRatio >= 0.99 && s.serverCpu > 0)
  const busiest = complete.reduce<SaturationStep | null>((a, b) => (a === null || b.serverCpu > a.serverCpu ? b : a), null)
  const capacityPerCore = busiest === null ? null : Math.round(busiest.deliveriesPerSec / (busiest.serverCpu / 100))
  return { rooms: shape.rooms, viewers: shape.viewers, p99LimitMs: options.saturationP99Ms, best, firstFailure: failure, capacityPerCore, steps }
}
