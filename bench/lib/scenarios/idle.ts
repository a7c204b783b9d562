/**
 * Idle connections: heap and RSS per connection, heartbeats on, in rooms of `roomSize` (one host, the rest
 * viewers), and how many are still open after a hold of 1.5 heartbeats.
 *
 * `idle(ctx)` measures one size (--idle) with the context's workers. `idleCurve(ctx, sizes, roomSize)` measures
 * each size on its own, from a server with nothing left of the previous size (closed and settled), with as
 * many load-generator processes as the size needs: a process may hold at most 20,000 open files here, so
 * each generator is given at most SOCKETS_PER_GENERATOR sockets (extra workers are started for the curve and
 * stopped after it).
 */
import { memoryAfterGc, type MemoryUsage } from '../inspector.js'
import type { RpcClient } from '../rpc.js'
import { metricsGauges, settle, type RunningServer } from '../targets.js'
import { startWorkers, stopWorkers } from '../workers.js'
import { mb, sleep, type Context } from './context.js'

/** What one load-generator process is given at most (well under the 20,000 open files a process may hold). */
export const SOCKETS_PER_GENERATOR = 5000

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
  /** Load-generator processes the connections were spread over. */
  loadgenProcs: number
  /** How long opening and joining every connection took. */
  connectMs: number
}

export interface IdleCurveResult {
  roomSize: number
  heartbeatMs: number
  /** True when each size had a fresh server process (RSS comparable across sizes). */
  restarted: boolean
  points: IdleResult[]
}

const kb = (bytes: number): number => Math.round(bytes / 1024 * 100) / 100

/** Opens `connections` idle clients in rooms of `roomSize` over `workers` (hosts on the first), holds, reads memory. */
async function measure (ctx: Context, workers: RpcClient[], connections: number, roomSize: number): Promise<IdleResult> {
  const { options, server } = ctx
  if (server.inspector === undefined) throw new Error('no inspector URL in the server output; cannot read its heap')
  const before = await memoryAfterGc(server.inspector)
  const rooms = Math.ceil(connections / roomSize)
  const perRoom = roomSize - 1
  // The last room gets what is left so that exactly `connections` are open.
  const viewers = connections - rooms
  const t0 = performance.now()
  const roomIds = await workers[0]!.call<string[]>('hosts', { count: rooms, prefix: `idle${connections}`, concurrency: 50 }, 900_000)
  const g = workers.length
  await Promise.all(workers.map(async (worker, j) => {
    const assignments: Array<{ roomId: string, count: number, from: number }> = []
    roomIds.forEach((roomId, r) => {
      const inRoom = Math.min(perRoom, viewers - r * perRoom)
      if (inRoom <= 0) return
      const base = Math.floor(inRoom / g)
      const count = base + (j < inRoom % g ? 1 : 0)
      if (count > 0) assignments.push({ roomId, count, from: j * base + Math.min(j, inRoom % g) })
    })
    // About 100 joins in flight in all, however many generators: each is a database write queued behind the
    // other writes of its room, which our server refuses after STORE_WAIT_MS.
    await worker.call('viewers', { assignments, prefix: `idle${connections}`, concurrency: Math.max(10, Math.ceil(100 / g)) }, 1_800_000)
  }))
  const connectMs = Math.round(performance.now() - t0)
  const heldMs = Math.round(options.heartbeatMs * 1.5)
  await sleep(heldMs)
  const after = await memoryAfterGc(server.inspector)
  const alive = (await Promise.all(workers.map(async (w) => await w.call<number>('alive')))).reduce((a, b) => a + b, 0)
  const serverMetrics = await metricsGauges(server, ['ws_connections', 'room_participants', 'nodejs_heap_size_used_bytes', 'process_resident_memory_bytes'])
  return {
    connections,
    alive,
    roomSize,
    heapPerConnKb: kb((after.heapUsed - before.heapUsed) / connections),
    rssPerConnKb: kb((after.rss - before.rss) / connections),
    before: summary(before),
    after: summary(after),
    ...(serverMetrics === undefined ? {} : { serverMetrics }),
    heldMs,
    loadgenProcs: workers.length,
    connectMs
  }
}

const summary = (m: MemoryUsage): { heapUsedMb: number, rssMb: number } => ({ heapUsedMb: mb(m.heapUsed), rssMb: mb(m.rss) })

/** One size (--idle, rooms of --idle-room-size) with the context's workers. */
export async function idle (ctx: Context): Promise<IdleResult> {
  return await measure(ctx, ctx.workers, ctx.options.idle, ctx.options.idleRoomSize)
}

/**
 * Memory per idle connection against the connection count: each size on its own, ascending, after closing
 * everything and letting the server settle (our server writes every departure to the database first). Starts
 * the extra load generators the largest size needs and stops them before returning; leaves nothing open.
 *
 * `restart`, when given, is called before every size but the first and must stop the server under test and
 * resolve with a fresh one of the same kind: the heap is the same either way (read after a full GC), but a
 * process's RSS does not shrink back after thousands of sockets closed (the allocator keeps the freed pages),
 * so without a restart a size's RSS delta is understated by what the previous size left behind.
 */
export async function idleCurve (ctx: Context, sizes: number[], roomSize: number, restart?: () => Promise<RunningServer>): Promise<IdleCurveResult> {
  const { options, log } = ctx
  let server = ctx.server
  const largest = Math.max(...sizes)
  const extra = startWorkers(Math.max(0, Math.ceil(largest / SOCKETS_PER_GENERATOR) - ctx.workers.length), options.nice)
  const points: IdleResult[] = []
  const closeAll = async (workers: RpcClient[]): Promise<void> => {
    await Promise.all(workers.map(async (w) => await w.call('closeAll', {}, 300_000).catch(() => {})))
    // Writing thousands of departures can keep our server from answering /metrics for a while: retry.
    const deadline = Date.now() + 900_000
    while (true) {
      try {
        await settle(server, Math.max(1000, deadline - Date.now()))
        return
      } catch (err) {
        if (Date.now() > deadline) throw err
        await sleep(1000)
      }
    }
  }
  try {
    await Promise.all(extra.map(async (w) => await w.call('target', { kind: server.kind, port: server.port })))
    const all = [...ctx.workers, ...extra]
    const ordered = [...sizes].sort((a, b) => a - b)
    for (const [i, size] of ordered.entries()) {
      const workers = all.slice(0, Math.max(ctx.workers.length, Math.ceil(size / SOCKETS_PER_GENERATOR)))
      await closeAll(all)
      if (i > 0 && restart !== undefined) {
        server = await restart()
        await Promise.all(all.map(async (w) => await w.call('target', { kind: server.kind, port: server.port })))
      }
      try {
        const point = await measure({ ...ctx, server }, workers, size, roomSize)
        points.push(point)
        log(`  idle ${size} (${workers.length} generator${workers.length === 1 ? '' : 's'}): heap ${point.heapPerConnKb} KB/conn, RSS ${point.rssPerConnKb} KB/conn, ${point.alive} still open, connected in ${(point.connectMs / 1000).toFixed(1)} s`)
      } finally {
        await closeAll(all)
      }
    }
  } finally {
    await stopWorkers(extra)
  }
  return { roomSize, heartbeatMs: options.heartbeatMs, restarted: restart !== undefined, points }
}
