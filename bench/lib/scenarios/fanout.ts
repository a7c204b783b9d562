/**
 * Fan-out: hosts sync and chat on a fixed schedule, viewers time what they receive. `measure` is one timed
 * run on rooms already populated; the saturation search reuses it.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Histogram, type HistogramJson, type Summary } from '../histogram.js'
import { startCpuProfile } from '../inspector.js'
import { summarizeProfile, type CodeKind, type CpuProfile } from '../profile.js'
import type { RoomShape } from '../options.js'
import { CpuMeter, ROOT, rssBytes } from '../proc.js'
import type { RpcClient } from '../rpc.js'
import { generatorMeter, mb, sleep, usPerDelivery, type Context } from './context.js'

export interface FanoutResult {
  rooms: number
  viewers: number
  seconds: number
  syncHz: number
  chatHz: number
  sent: { syncs: number, chats: number }
  expected: number
  received: number
  deliveredRatio: number
  deliveriesPerSec: number
  latency: Summary
  syncLatency: Summary
  chatLatency: Summary
  sendLag: Summary
  serverCpu: number
  /** Server CPU time per delivery, in microseconds: what a delivery costs, whatever else the machine runs. */
  serverUsPerDelivery: number
  /** The same, split into user space (JS, V8, libuv, Node's C++) and the kernel (system time: the TCP writes). */
  serverUserUsPerDelivery: number
  serverSystemUsPerDelivery: number
  serverRssMb: number
  generatorCpu: number[]
  /** With --profile: the timed window's CPU profile, as percent of its samples by kind of code, and its file. */
  profile?: { file: string, kinds: Record<CodeKind, number> }
}

/** Hosts (one per room) on the first worker; viewers spread over all workers. Returns the room ids. */
export async function populate (ctx: Context, shape: RoomShape, prefix: string): Promise<string[]> {
  const [first] = ctx.workers
  const roomIds = await first!.call<string[]>('hosts', { count: shape.rooms, prefix, concurrency: 50 }, 600_000)
  const g = ctx.workers.length
  await Promise.all(ctx.workers.map(async (worker, j) => {
    const assignments = roomIds.map((roomId) => {
      const base = Math.floor(shape.viewers / g)
      const count = base + (j < shape.viewers % g ? 1 : 0)
      const from = j * base + Math.min(j, shape.viewers % g)
      return { roomId, count, from }
    }).filter((a) => a.count > 0)
    await worker.call('viewers', { assignments, prefix, concurrency: 50 }, 900_000)
  }))
  return roomIds
}


/** Timed frames received since the last reset; with `stale`, those of earlier runs too. */
async function received (ctx: Context, stale = false): Promise<number> {
  return await receivedBy(ctx.workers, stale)
}

/** Timed frames the workers received since their last reset; with `stale`, those of earlier runs too. */
export async function receivedBy (workers: RpcClient[], stale = false): Promise<number> {
  const stats = await Promise.all(workers.map(async (w) => await w.call<{ received: number, stale: number }>('stats')))
  return stats.reduce((sum, s) => sum + s.received + (stale ? s.stale : 0), 0)
}

/** Waits until the workers received `expected` timed frames, at most 3 s (a backlog drains). */
export async function awaitDeliveries (workers: RpcClient[], expected: number): Promise<void> {
  const drainUntil = Date.now() + 3000
  let got = await receivedBy(workers)
  while (got < expected && Date.now() < drainUntil) {
    await sleep(20)
    got = await receivedBy(workers)
  }
}

/** The workers' latency histograms of the run: syncs, chats and both. */
export async function collectLatencies (workers: RpcClient[]): Promise<{ sync: Histogram, chat: Histogram, all: Histogram }> {
  const collected = await Promise.all(workers.map(async (w) => await w.call<{ sync: HistogramJson, chat: HistogramJson }>('collect')))
  const sync = new Histogram()
  const chat = new Histogram()
  for (const c of collected) {
    sync.merge(c.sync)
    chat.merge(c.chat)
  }
  return { sync, chat, all: new Histogram().merge(sync).merge(chat) }
}

/** Waits until no timed frame has arrived for `quietMs` (a backlog of an overloaded step drains), at most `maxMs`. */
export async function quiesce (ctx: Context, quietMs = 500, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs
  let last = await received(ctx, true)
  let quietSince = Date.now()
  while (Date.now() < deadline) {
    await sleep(100)
    const now = await received(ctx, true)
    if (now !== last) {
      last = now
      quietSince = Date.now()
    } else if (Date.now() - quietSince >= quietMs) {
      return
    }
  }
}


/** One timed run at `syncHz` on rooms already populated; drains until everything sent has arrived or 3 s passed. */
export async function measure (ctx: Context, shape: RoomShape, syncHz: number, chatHz: number, seconds: number): Promise<FanoutResult> {
  await Promise.all(ctx.workers.map(async (w) => await w.call('reset')))
  const serverCpu = new CpuMeter(() => [ctx.server.pid])
  const genCpu = generatorMeter(ctx)
  const stopProfile = ctx.options.profile && ctx.server.inspector !== undefined ? await startCpuProfile(ctx.server.inspector) : undefined
  serverCpu.start()
  for (const m of genCpu) m.start()
  const driven = await ctx.workers[0]!.call<{ syncs: number, chats: number, lag: HistogramJson }>('drive', { syncHz, chatHz, durationMs: seconds * 1000 }, seconds * 1000 + 60_000)
  const expected = driven.syncs * shape.viewers + driven.chats * (shape.viewers + 1)
  // The meters run until everything sent has arrived (or 3 s passed): a server that fell behind spends CPU on
  // its backlog after the last send, and those deliveries are counted too.
  await awaitDeliveries(ctx.workers, expected)
  const serverCpuPct = serverCpu.stop()
  const generatorCpu = genCpu.map((m) => m.stop())
  const metered = serverCpu.seconds
  const profile = stopProfile === undefined ? undefined : saveProfile(ctx, shape, syncHz, await stopProfile() as CpuProfile)
  const { sync, chat, all } = await collectLatencies(ctx.workers)
  return {
    rooms: shape.rooms,
    viewers: shape.viewers,
    seconds,
    syncHz,
    chatHz,
    sent: { syncs: driven.syncs, chats: driven.chats },
    expected,
    received: all.count,
    deliveredRatio: expected === 0 ? 1 : Math.round((all.count / expected) * 10000) / 10000,
    deliveriesPerSec: Math.round(all.count / seconds),
    latency: all.summaryMs(),
    syncLatency: sync.summaryMs(),
    chatLatency: chat.summaryMs(),
    sendLag: Histogram.from(driven.lag).summaryMs(),
    serverCpu: serverCpuPct,
    serverUsPerDelivery: usPerDelivery(serverCpuPct, all.count / metered),
    serverUserUsPerDelivery: usPerDelivery(serverCpu.split.userPct, all.count / metered),
    serverSystemUsPerDelivery: usPerDelivery(serverCpu.split.systemPct, all.count / metered),
    serverRssMb: mb(rssBytes(ctx.server.pid)),
    generatorCpu,
    ...(profile === undefined ? {} : { profile })
  }
}

/** Writes a window's profile to <out>/profiles/ and sums it by kind of code. */
function saveProfile (ctx: Context, shape: RoomShape, syncHz: number, profile: CpuProfile): { file: string, kinds: Record<CodeKind, number> } {
  const dir = resolve(ROOT, ctx.options.outDir, 'profiles')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${ctx.server.kind}-${shape.rooms}x${shape.viewers}-${Math.round(syncHz)}hz.cpuprofile`)
  writeFileSync(file, JSON.stringify(profile))
  const { totalUs, byKind } = summarizeProfile(profile)
  const pct = (us: number): number => Math.round((us / totalUs) * 1000) / 10
  const kinds = { js: pct(byKind.js), native: pct(byKind.native), gc: pct(byKind.gc), idle: pct(byKind.idle), other: pct(byKind.other) }
  return { file: file.slice(ROOT.length), kinds }
}

export async function fanout (ctx: Context, shape: RoomShape): Promise<FanoutResult> {
  await populate(ctx, shape, `fan${shape.rooms}x${shape.viewers}`)
  return await measure(ctx, shape, ctx.options.syncHz, ctx.options.chatHz, ctx.options.fanoutSeconds)
}
