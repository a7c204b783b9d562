/**
 * `npm run bench:sync`: sync quality in Chromium, this SDK's player binding against a naive follower (seek when
 * more than 1 s off), both on the demo page, in the same room, at the same time, with the same video and the
 * same skewed clock (5 s fast; late joiners 3 s slow). Measured against the true clock (test/browser/helpers/
 * party.ts): drift p50/p95/max after convergence, convergence after a host seek and for a late joiner,
 * recovery after a server SIGTERM and restart, visible seeks. Then all of it again with every page's HTTP and
 * WebSocket traffic through a TCP proxy that delays each direction by DELAY_MS, where host_sync's `at` is what
 * keeps the viewers on the host's time. Writes bench/results/sync.{md,json}. Not part of `npm run bench`.
 *
 * Contract: the server, the media server, the proxy and Chromium are stopped however the run ends.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serverDatabase, startServer, type ServerProcess } from '../../test/helpers/server-process.js'
import { chromiumPath, launchChromium, type Browser } from '../../test/browser/helpers/chromium.js'
import { MediaServer } from '../../test/browser/helpers/media-server.js'
import { abs, createRoom, drifts, hostDoes, measure, openMember, percentile, sleep, type Member, type PageGlobals } from '../../test/browser/helpers/party.js'
import { DelayProxy } from './delay-proxy.js'
import { installNaiveFollower } from './naive-follower.js'

const RESULTS = fileURLToPath(new URL('../results/', import.meta.url))
const DELAY_MS = Number(process.env.DELAY_MS ?? 50)
const STEADY_MS = Number(process.env.STEADY_MS ?? 15_000)
const WITHIN = 0.05
const CONVERGE_TIMEOUT_MS = 10_000
const ENV = { DISCONNECT_GRACE_MS: '60000' }

type Follower = 'binding' | 'naive'
const FOLLOWERS: readonly Follower[] = ['binding', 'naive']

interface FollowerResult {
  driftMs: { p50: number, p95: number, max: number, samples: number }
  seekConvergeMs: number | null
  lateJoinConvergeMs: number | null
  /** The same, counted from opening the page (loading the demo and connecting included). */
  lateJoinFromOpenMs: number | null
  restart: { maxDriftDuringOutageMs: number, convergeAfterBackMs: number | null }
  seeks: number
}

interface NetworkResult {
  network: string
  oneWayDelayMs: number
  serverDownMs: number
  reconnectAfterBackMs: number
  followers: Record<Follower, FollowerResult>
}

const teardowns: Array<() => Promise<void> | void> = []
const t = { teardown: (fn: () => Promise<void> | void) => { teardowns.push(fn) } }
async function cleanup (): Promise<void> {
  for (const fn of teardowns.splice(0).reverse()) await Promise.resolve(fn()).catch(() => {})
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { void cleanup().then(() => process.exit(130)) })

const ms = (s: number): number => Math.round(s * 10_000) / 10

/** Per follower: ms until it was within WITHIN for 3 samples in a row, or null if not within the timeout. */
async function convergeTimes (host: Member, followers: readonly Member[], since: number | readonly number[] = Date.now()): Promise<Array<number | null>> {
  const starts = followers.map((_, i) => typeof since === 'number' ? since : since[i]!)
  const inRow = followers.map(() => 0)
  const done: Array<number | null> = followers.map(() => null)
  while (Date.now() - Math.min(...starts) < CONVERGE_TIMEOUT_MS && done.some((d) => d === null)) {
    const { drifts: d } = await drifts(host, followers)
    d.forEach((value, i) => {
      if (done[i] !== null) return
      inRow[i] = Math.abs(value) <= WITHIN ? inRow[i]! + 1 : 0
      if (inRow[i]! >= 3) done[i] = Date.now() - starts[i]!
    })
    await sleep(50)
  }
  return done
}

async function seeksOf (member: Member): Promise<number> {
  return await member.page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals
    return g.watchParty.binding?.seeks ?? g.__naive?.seeks ?? 0
  })
}

/** The binding's and the naive follower's pages, opened together; `joinedAt`: when each had joined the room. */
async function openPair (browser: Browser, baseUrl: string, roomId: string, name: string, skewMs: number): Promise<{ members: Member[], joinedAt: number[] }> {
  const joinedAt = [0, 0]
  const [binding, naive] = await Promise.all([
    openMember(browser, { baseUrl, roomId, userId: `${name}-binding`, skewMs }).then((m) => { joinedAt[0] = Date.now(); return m }),
    openMember(browser, { baseUrl, roomId, userId: `${name}-naive`, skewMs, sync: 'off' }).then(async (m) => { await installNaiveFollower(m.page); joinedAt[1] = Date.now(); return m })
  ])
  return { members: [binding, naive], joinedAt }
}

async function allConnected (members: readonly Member[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const states = await Promise.all(members.map(async (m) => await m.page.evaluate(() => (globalThis as unknown as PageGlobals).watchParty.client?.state)))
    if (states.every((s) => s === 'connected')) return true
    await sleep(50)
  }
  return false
}

async function runNetwork (browser: Browser, media: MediaServer, server: { current: ServerProcess }, database: Awaited<ReturnType<typeof serverDatabase>>, delayMs: number): Promise<NetworkResult> {
  const network = delayMs === 0 ? 'loopback' : `+${delayMs} ms each way`
  const proxy = delayMs === 0 ? undefined : await DelayProxy.start({ port: server.current.port }, delayMs)
  if (proxy !== undefined) t.teardown(async () => { await proxy.close() })
  const baseUrl = proxy?.baseUrl ?? server.current.baseUrl
  console.log(`\n## ${network}`)
  const roomId = await createRoom(server.current.baseUrl, `host-${delayMs}`, `sync bench ${network}`)
  const host = await openMember(browser, { baseUrl, roomId, userId: `host-${delayMs}`, video: media.videoUrl })
  const followers = (await openPair(browser, baseUrl, roomId, `fast-${delayMs}`, 5000)).members
  const series: number[][] = FOLLOWERS.map(() => [])
  const keep = (s: number[][]): void => { s.forEach((values, i) => { series[i]!.push(...values) }) }

  await hostDoes(host, 'play')
  await sleep(4000)
  keep(await measure(host, followers, STEADY_MS, 100))
  console.log('steady state measured')

  await hostDoes(host, { seek: 60 })
  const seekConverge = await convergeTimes(host, followers)
  console.log(`after a seek: ${seekConverge.join(', ')} ms`)
  await sleep(2000)
  keep(await measure(host, followers, STEADY_MS / 2, 100))

  const openedAt = Date.now()
  const { members: late, joinedAt } = await openPair(browser, baseUrl, roomId, `late-${delayMs}`, -3000)
  const lateConverge = await convergeTimes(host, late, joinedAt)
  const lateFromOpen = lateConverge.map((v, i) => v === null ? null : v + joinedAt[i]! - openedAt)
  console.log(`late joiners: ${lateConverge.join(', ')} ms from joining, ${lateFromOpen.join(', ')} ms from opening the page`)

  const everyone = [host, ...followers, ...late]
  server.current.kill('SIGTERM')
  await server.current.exited
  const downAt = Date.now()
  const outage = startOutageSampling(host, followers)
  server.current = await startServer(t, { database, env: { ...ENV, PORT: String(server.current.port) } })
  const backAt = Date.now()
  const reconnected = await allConnected(everyone, 30_000)
  const reconnectMs = Date.now() - backAt
  const restartConverge = await convergeTimes(host, followers, backAt)
  const outageDrift = await outage.stop()
  console.log(`restart: down ${backAt - downAt} ms, reconnected ${String(reconnected)} after ${reconnectMs} ms, converged ${restartConverge.join(', ')} ms after the server was back`)

  const followersResult = {} as Record<Follower, FollowerResult>
  for (const [i, follower] of FOLLOWERS.entries()) {
    const values = abs(series[i]!)
    followersResult[follower] = {
      driftMs: { p50: ms(percentile(values, 50)), p95: ms(percentile(values, 95)), max: ms(Math.max(...values)), samples: values.length },
      seekConvergeMs: seekConverge[i] ?? null,
      lateJoinConvergeMs: lateConverge[i] ?? null,
      lateJoinFromOpenMs: lateFromOpen[i] ?? null,
      restart: { maxDriftDuringOutageMs: ms(outageDrift[i]!), convergeAfterBackMs: restartConverge[i] ?? null },
      seeks: await seeksOf(followers[i]!) + await seeksOf(late[i]!)
    }
  }
  for (const m of everyone) await m.context.close()
  await proxy?.close()
  return { network, oneWayDelayMs: delayMs, serverDownMs: backAt - downAt, reconnectAfterBackMs: reconnected ? reconnectMs : -1, followers: followersResult }
}

/** Largest |drift| per follower while sampling, from the SIGTERM until stopped. */
function startOutageSampling (host: Member, followers: readonly Member[]): { stop: () => Promise<number[]> } {
  const worst = followers.map(() => 0)
  let running = true
  const loop = (async () => {
    while (running) {
      const { drifts: d } = await drifts(host, followers)
      d.forEach((value, i) => { worst[i] = Math.max(worst[i]!, Math.abs(value)) })
      await sleep(100)
    }
  })()
  return { stop: async () => { running = false; await loop; return worst } }
}

const cell = (v: number | null, target?: number): string => v === null ? `> ${CONVERGE_TIMEOUT_MS / 1000} s` : `${v}${target !== undefined ? (v <= target ? ' ✓' : ' ✗') : ''}`

function markdown (results: NetworkResult[], meta: Record<string, unknown>): string {
  const lines = [
    '# Sync quality in Chromium: the player binding against a naive follower',
    '',
    `Written by \`npm run bench:sync\` (bench/sync/run.ts) on ${String(meta.date)}: ${String(meta.chromium)}, ${String(meta.cpus)} CPUs, load average ${String(meta.load)} at start.`,
    'Each row is one follower on the demo page in the same room as the host, at the same time, its page clock 5 s fast',
    '(late joiners: 3 s slow); drift is measured against the true clock. Naive: seek when more than 1 s off the host',
    "(on the same synchronized clock); binding: the SDK's `bindPlayer`. Drift: every 100 ms over the steady windows",
    '(15 s after the start, 7.5 s after a seek). Convergence: within 50 ms for 3 samples in a',
    'row, sampled every 50 ms; late joiners count from the moment their page has joined the room (in brackets: from',
    'opening the page, loading and connecting included). Targets: p95 ≤ 50 ms, seek and late-join convergence ≤ 2000 ms,',
    'restart recovery ≤ 3000 ms (from the server listening again).',
    ''
  ]
  for (const r of results) {
    lines.push(`## ${r.network}`, '', `Server down ${r.serverDownMs} ms (SIGTERM to listening again); every page reconnected ${r.reconnectAfterBackMs} ms after it was back.`, '')
    lines.push('| follower | drift p50 ms | p95 ms | max ms | converge after seek ms | late joiner ms (from page open) | max drift while down ms | in sync after restart ms | seeks |')
    lines.push('|---|---|---|---|---|---|---|---|---|')
    for (const f of FOLLOWERS) {
      const x = r.followers[f]
      lines.push(`| ${f} | ${x.driftMs.p50} | ${x.driftMs.p95}${f === 'binding' ? (x.driftMs.p95 <= 50 ? ' ✓' : ' ✗') : ''} | ${x.driftMs.max} | ${cell(x.seekConvergeMs, f === 'binding' ? 2000 : undefined)} | ${cell(x.lateJoinConvergeMs, f === 'binding' ? 2000 : undefined)} (${cell(x.lateJoinFromOpenMs)}) | ${x.restart.maxDriftDuringOutageMs} | ${cell(x.restart.convergeAfterBackMs, f === 'binding' ? 3000 : undefined)} | ${x.seeks} |`)
    }
    lines.push('')
  }
  return lines.join('\n')
}

async function main (): Promise<void> {
  if (chromiumPath() === undefined) throw new Error('no chromium binary (apt-get install chromium, or set CHROMIUM_PATH)')
  const database = await serverDatabase(t)
  const server = { current: await startServer(t, { database, env: ENV }) }
  const media = await MediaServer.start(t)
  const browser = await launchChromium(t)
  const version = await (async () => { const c = await browser.newContext(); const p = await c.newPage(); const v = await p.evaluate(() => (globalThis as unknown as { navigator: { userAgent: string } }).navigator.userAgent); await c.close(); return /Chrome\/[\d.]+/.exec(v)?.[0] ?? v })()
  const meta = { date: new Date().toISOString(), chromium: version, cpus: cpus().length, load: loadavg().map((l) => l.toFixed(2)).join(' ') }
  const results: NetworkResult[] = []
  for (const delay of [0, DELAY_MS]) results.push(await runNetwork(browser, media, server, database, delay))
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(join(RESULTS, 'sync.json'), `${JSON.stringify({ ...meta, results }, null, 2)}\n`)
  const md = markdown(results, meta)
  writeFileSync(join(RESULTS, 'sync.md'), md)
  console.log(`\n${md}`)
}

main().then(cleanup, async (err: unknown) => {
  console.error(err)
  await cleanup()
  process.exitCode = 1
})
