/**
 * A load-generator process. The orchestrator (bench/run.ts) drives it over IPC; it holds the clients of
 * one scenario at a time: hosts (one per room, who create the rooms and sync/chat on a schedule), viewers
 * (who only receive and time what they receive) and spare connections (who join during a join storm).
 *
 * Latency is measured on one clock: the sender stamps CLOCK_MONOTONIC microseconds into the payload and the
 * receiver subtracts it from its own reading of the same clock, in whichever worker process it runs.
 * Sends follow a fixed schedule (open loop); how late the generator was against it is recorded as send lag.
 */
import autocannon from 'autocannon'
import { connectClient, mapLimit, marker, MARK_SYNC, type BenchClient, type TargetKind } from '../lib/clients.js'
import { Histogram, nowUs } from '../lib/histogram.js'
import { serveRpc } from '../lib/rpc.js'

interface Host { client: BenchClient, roomId: string }

let kind: TargetKind = 'ours'
let port = 0
let hosts: Host[] = []
let viewers: BenchClient[] = []
let spare: BenchClient[] = []
/** Every client opened, so that a scenario that failed halfway leaves nothing open. */
const opened = new Set<BenchClient>()
const syncLatency = new Histogram()
const chatLatency = new Histogram()
let received = 0
let other = 0

/** Frames sent before the last reset belong to an earlier run (a backlog still draining): not counted. */
let since = 0
let stale = 0

function watch (client: BenchClient): BenchClient {
  opened.add(client)
  client.onMarked = (markKind, sentUs) => {
    if (sentUs < since) {
      stale++
      return
    }
    const latency = nowUs() - sentUs
    if (markKind === MARK_SYNC) syncLatency.record(latency)
    else chatLatency.record(latency)
    received++
  }
  client.onOther = () => { other++ }
  return client
}

const str = (v: unknown): string => String(v)
const num = (v: unknown): number => Number(v)

async function openHosts (count: number, prefix: string, concurrency: number): Promise<string[]> {
  const created = await mapLimit(Array.from({ length: count }, (_v, i) => i), concurrency, async (i) => {
    const client = watch(await connectClient(kind, port, `${prefix}-host-${i}`))
    const reply = await client.request('create_room', { roomName: `bench room ${i}` })
    const room = reply.room as { id: string }
    return { client, roomId: room.id }
  })
  hosts.push(...created)
  return created.map((h) => h.roomId)
}

async function closeAll (): Promise<void> {
  for (const c of opened) c.close()
  opened.clear()
  hosts = []
  viewers = []
  spare = []
  // Let the closes reach the wire before the next scenario starts.
  await new Promise((resolve) => setTimeout(resolve, 50))
}

async function drive (syncHz: number, chatHz: number, durationMs: number): Promise<unknown> {
  const lag = new Histogram()
  const n = hosts.length
  const syncEvery = 1000 / syncHz
  const chatEvery = chatHz > 0 ? 1000 / chatHz : Infinity
  const start = performance.now() + 5
  const end = start + durationMs
  const nextSync = hosts.map((_h, i) => start + (i / n) * syncEvery)
  const nextChat = hosts.map((_h, i) => start + (i / n) * chatEvery + syncEvery / 2)
  let syncs = 0
  let chats = 0
  let position = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now()
      let earliest = end
      for (let i = 0; i < n; i++) {
        const { client, roomId } = hosts[i]!
        while (nextSync[i]! <= now && nextSync[i]! < end) {
          lag.record((now - nextSync[i]!) * 1000)
          position += syncEvery / 1000
          client.fire('host_sync', {
            roomId,
            videoUrl: `https://example.com/bench/movie.mp4#${marker('S', nowUs())}`,
            currentTime: position,
            isPlaying: true,
            playbackRate: 1
          })
          syncs++
          nextSync[i]! += syncEvery
        }
        while (nextChat[i]! <= now && nextChat[i]! < end) {
          lag.record((now - nextChat[i]!) * 1000)
          client.fire('chat', { roomId, message: `${marker('C', nowUs())} what a scene!` })
          chats++
          nextChat[i]! += chatEvery
        }
        earliest = Math.min(earliest, nextSync[i]!, nextChat[i]!)
      }
      if (now >= end) {
        resolve()
        return
      }
      setTimeout(tick, Math.max(0, Math.min(earliest, end) - performance.now()))
    }
    setTimeout(tick, 5)
  })
  return { syncs, chats, lag: lag.toJSON() }
}

interface CannonResult { rps: number, p50: number, p99: number, max: number, total: number, non2xx: number, errors: number }

async function cannon (options: autocannon.Options): Promise<CannonResult> {
  const r = await autocannon({ ...options, timeout: 10 })
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    total: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts
  }
}

serveRpc({
  target: async (a) => {
    kind = str(a.kind) as TargetKind
    port = num(a.port)
    return {}
  },
  hosts: async (a) => await openHosts(num(a.count), str(a.prefix), num(a.concurrency ?? 50)),
  viewers: async (a) => {
    const assignments = a.assignments as Array<{ roomId: string, count: number, from: number }>
    const jobs = assignments.flatMap(({ roomId, count, from }) => Array.from({ length: count }, (_v, i) => ({ roomId, user: `${str(a.prefix)}-${roomId.slice(0, 8)}-v${from + i}` })))
    const joined = await mapLimit(jobs, num(a.concurrency ?? 50), async ({ roomId, user }) => {
      const client = watch(await connectClient(kind, port, user))
      await client.request('join_room', { roomId })
      return client
    })
    viewers.push(...joined)
    return joined.length
  },
  spare: async (a) => {
    const opened = await mapLimit(Array.from({ length: num(a.count) }, (_v, i) => i), num(a.concurrency ?? 50), async (i) =>
      watch(await connectClient(kind, port, `${str(a.prefix)}-joiner-${i}`)))
    spare.push(...opened)
    return opened.length
  },
  joinStorm: async (a) => {
    const roomIds = a.roomIds as string[]
    const latency = new Histogram()
    const joiners = spare
    spare = []
    let errors = 0
    let firstError: string | undefined
    const started = nowUs()
    await mapLimit(joiners, num(a.concurrency), async (client, i) => {
      const t0 = nowUs()
      try {
        await client.request('join_room', { roomId: roomIds[i % roomIds.length] })
        latency.record(nowUs() - t0)
      } catch (err) {
        errors++
        firstError ??= (err as Error).message
      }
    })
    const durationMs = (nowUs() - started) / 1000
    viewers.push(...joiners)
    return { latency: latency.toJSON(), durationMs, joins: latency.count, errors, firstError }
  },
  reset: async () => {
    since = nowUs()
    stale = 0
    syncLatency.reset()
    chatLatency.reset()
    received = 0
    other = 0
    return {}
  },
  drive: async (a) => await drive(num(a.syncHz), num(a.chatHz), num(a.durationMs)),
  stats: async () => ({ received, other, stale }),
  alive: async () => [...hosts.map((h) => h.client), ...viewers, ...spare].filter((c) => !c.closed).length,
  collect: async () => ({ sync: syncLatency.toJSON(), chat: chatLatency.toJSON(), received, other, stale }),
  closeAll: async () => {
    await closeAll()
    return {}
  },
  rest: async (a) => {
    const base = `http://127.0.0.1:${num(a.port)}`
    const durationS = num(a.durationS)
    const connections = num(a.connections)
    let n = 0
    const post = await cannon({
      url: base,
      connections,
      duration: durationS,
      requests: [{
        method: 'POST',
        path: '/rooms',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Friday movie' }),
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, 'x-user-id': `rest-host-${n++ % 1000}` } })
      }]
    })
    const created = await fetch(`${base}/rooms`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': 'rest-reader' }, body: JSON.stringify({ name: 'read me' }) })
    if (created.status !== 201) throw new Error(`POST /rooms answered ${created.status}: ${await created.text()}`)
    const { id } = await created.json() as { id: string }
    const get = await cannon({ url: `${base}/rooms/${id}`, connections, duration: durationS, headers: { 'x-user-id': 'rest-reader' } })
    return { post, get }
  },
  exit: async () => {
    setTimeout(() => process.exit(0), 10)
    return {}
  }
})

process.on('disconnect', () => { process.exit(0) })
