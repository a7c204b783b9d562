/**
 * CPU per delivery against room size: the same number of viewers (by default 1,000) split into rooms of 10,
 * 100 or 1,000, driven at the same total delivery rate, so that what changes from point to point is only how
 * many deliveries one incoming message fans out to. The rate is high enough that deliveries, not timers and
 * heartbeats, dominate the server's CPU, and low enough that every server and the floor keep up on 2 cores.
 */
import type { RoomShape } from '../options.js'
import { settle } from '../targets.js'
import type { Context } from './context.js'
import { measure, populate, type FanoutResult } from './fanout.js'

export interface RoomSizeResult {
  /** Deliveries per second aimed at (syncs to viewers plus chats to every member). */
  deliveriesPerSec: number
  chatHz: number
  points: FanoutResult[]
}

/** The sync rate per room at which `shape` makes `deliveriesPerSec` deliveries a second with `chatHz` chat. */
export function syncHzFor (shape: RoomShape, deliveriesPerSec: number, chatHz: number): number {
  const chatDeliveries = shape.rooms * (shape.viewers + 1) * chatHz
  return Math.max(0.1, (deliveriesPerSec - chatDeliveries) / (shape.rooms * shape.viewers))
}

export async function roomSizeCurve (ctx: Context, shapes: RoomShape[], deliveriesPerSec: number, chatHz: number, seconds: number): Promise<RoomSizeResult> {
  const points: FanoutResult[] = []
  for (const shape of shapes) {
    await populate(ctx, shape, `size${shape.rooms}x${shape.viewers}`)
    const point = await measure(ctx, shape, syncHzFor(shape, deliveriesPerSec, chatHz), chatHz, seconds)
    points.push(point)
    ctx.log(`    ${shape.rooms}x${shape.viewers} at ${point.syncHz.toFixed(1)} Hz/room: ${point.deliveriesPerSec} deliveries/s (${(point.deliveredRatio * 100).toFixed(1)} %), ${point.serverUsPerDelivery} µs/delivery (user ${point.serverUserUsPerDelivery}, kernel ${point.serverSystemUsPerDelivery}), p99 ${point.latency.p99} ms`)
    await Promise.all(ctx.workers.map(async (w) => await w.call('closeAll').catch(() => {})))
    await settle(ctx.server).catch(() => {})
  }
  return { deliveriesPerSec, chatHz, points }
}
