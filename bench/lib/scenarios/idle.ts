/** Idle connections: heap and RSS per connection, heartbeats on. */
import { memoryAfterGc } from '../inspector.js'
import { metricsGauges } from '../targets.js'
import { mb, sleep, type Context } from './context.js'

export interface IdleResult {
  connections: number
  alive: number
  roomSize: number
  heapPerConnKb: number
  rssPerConnKb: number
  before: { heapUsedMb: number, rssMb: number }
  after: { heapUsedMb: number, rssMb: number }
  /** Our server's own gauges after the connections settled (cross-check; baselines have none). */
  serverMetrics?: Record<string, number>
  heldMs: number
}

export async function idle (ctx: Context): Promise<IdleResult> {
  const { options, server } = ctx
  if (server.inspector === undefined) throw new Error('no inspector URL in the server output; cannot read its heap')
  const before = await memoryAfterGc(server.inspector)
  const rooms = Math.ceil(options.idle / options.idleRoomSize)
  const perRoom = options.idleRoomSize - 1
  // The last room gets what is left so that exactly `idle` connections are open.
  const viewers = options.idle - rooms
  const roomIds = await ctx.workers[0]!.call<string[]>('hosts', { count: rooms, prefix: 'idle', concurrency: 50 }, 900_000)
  const g = ctx.workers.length
  await Promise.all(ctx.workers.map(async (worker, j) => {
    const assignments: Array<{ roomId: string, count: number, from: number }> = []
    roomIds.forEach((roomId, r) => {
      const inRoom = Math.min(perRoom, viewers - r * perRoom)
      if (inRoom <= 0) return
      const base = Math.floor(inRoom / g)
      const count = base + (j < inRoom % g ? 1 : 0)
      if (count > 0) assignments.push({ roomId, count, from: j * base + Math.min(j, inRoom % g) })
    })
    await worker.call('viewers', { assignments, prefix: 'idle', concurrency: 100 }, 1_800_000)
  }))
  const heldMs = Math.round(options.heartbeatMs * 1.5)
  await sleep(heldMs)
  const after = await memoryAfterGc(server.inspector)
  const alive = (await Promise.all(ctx.workers.map(async (w) => await w.call<number>('alive')))).reduce((a, b) => a + b, 0)
  const serverMetrics = await metricsGauges(server, ['ws_connections', 'room_participants', 'nodejs_heap_size_used_bytes', 'process_resident_memory_bytes'])
  const kb = (bytes: number): number => Math.round(bytes / 1024 * 100) / 100
  return {
    connections: options.idle,
    alive,
    roomSize: options.idleRoomSize,
    heapPerConnKb: kb((after.heapUsed - before.heapUsed) / options.idle),
    rssPerConnKb: kb((after.rss - before.rss) / options.idle),
    before: { heapUsedMb: mb(before.heapUsed), rssMb: mb(before.rss) },
    after: { heapUsedMb: mb(after.heapUsed), rssMb: mb(after.rss) },
    ...(serverMetrics === undefined ? {} : { serverMetrics }),
    heldMs
  }
}
