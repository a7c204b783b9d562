/**
 * A watch party in Chromium for the browser tests and the sync bench: each member is the demo page in a browser
 * context of its own, optionally with its clock skewed; drift is measured against the true clock, not the
 * pages' own.
 *
 * Measuring: the init script keeps the unskewed clock (`__truth.now`) before any page script runs, then skews
 * `Date.now` and `performance.timeOrigin` (the page and the SDK see a clock `skewMs` off). A sample reads each
 * page's position and true time; a viewer's drift is its position minus the host's, extrapolated to the same
 * true instant at the host's rate. Samples of all pages are taken together, so the extrapolation is over a few ms.
 */
import type { BrowserContext, Page } from 'playwright-core'
import type { Browser } from './chromium.js'

/** What the tests read in a page (the demo's `window.watchParty`, and the init script's true clock). */
export interface PageGlobals {
  watchParty: {
    video: { currentTime: number, paused: boolean, playbackRate: number, seeking: boolean, readyState: number, play (): Promise<void>, pause (): void }
    ready: Promise<void>
    client?: { state: string }
    room?: { id: string, isHost: boolean, viewers: ReadonlyArray<{ userId: string, drift: number | null, buffering: boolean }> }
    binding?: { seeks: number, mode: string }
  }
  __truth: { now (): number, loads: number }
  __naive?: { seeks: number }
  __marker?: string
}

export interface Member {
  name: string
  context: BrowserContext
  page: Page
  skewMs: number
}

export interface MemberOptions {
  baseUrl: string
  roomId: string
  userId: string
  /** The host's video (`&video=`). */
  video?: string
  skewMs?: number
  /** `off`: the page joins without the binding (the bench puts another follower on it). */
  sync?: 'off'
  /** Media requests of this member are held from this byte on (see media-server.ts). */
  stallAfter?: number
}

/** Opens the demo page as one member, in a context of its own; resolves once it has joined and bound. */
export async function openMember (browser: Browser, options: MemberOptions): Promise<Member> {
  const context = await browser.newContext()
  const skewMs = options.skewMs ?? 0
  // Functions serialized into the page may be wrapped in esbuild's __name() when the caller runs under tsx.
  await context.addInitScript({ content: 'globalThis.__name ??= (f) => f' })
  await context.addInitScript((skew: number) => {
    const realNow = performance.now.bind(performance)
    const realOrigin = performance.timeOrigin
    const realDateNow = Date.now.bind(Date)
    const truth = { now: () => realOrigin + realNow(), loads: 0 }
    Object.defineProperty(globalThis, '__truth', { value: truth, configurable: false })
    if (skew !== 0) {
      Date.now = () => realDateNow() + skew
      Object.defineProperty(performance, 'timeOrigin', { get: () => realOrigin + skew, configurable: true })
    }
  }, skewMs)
  if (options.stallAfter !== undefined) {
    const stallAfter = String(options.stallAfter)
    await context.route((url) => url.pathname.endsWith('.webm'), async (route) => {
      await route.continue({ headers: { ...route.request().headers(), 'x-stall-after': stallAfter } })
    })
  }
  const page = await context.newPage()
  const query = new URLSearchParams({ room: options.roomId, user: options.userId })
  if (options.video !== undefined) query.set('video', options.video)
  if (options.sync !== undefined) query.set('sync', options.sync)
  await page.goto(`${options.baseUrl}/demo?${query.toString()}`)
  await page.evaluate(async () => { await (globalThis as unknown as PageGlobals).watchParty.ready })
  return { name: options.userId, context, page, skewMs }
}

export interface Sample {
  position: number
  /** True clock, epoch ms. */
  now: number
  paused: boolean
  rate: number
  seeking: boolean
  seeks: number
  state: string | undefined
}

async function sampleOne (page: Page): Promise<Sample> {
  return await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals
    const v = g.watchParty.video
    return { position: v.currentTime, now: g.__truth.now(), paused: v.paused, rate: v.playbackRate, seeking: v.seeking, seeks: g.watchParty.binding?.seeks ?? g.__naive?.seeks ?? 0, state: g.watchParty.client?.state }
  })
}

/** Each viewer's drift to the host (s, positive: ahead), from one joint sample. */
export async function drifts (host: Member, viewers: readonly Member[]): Promise<{ drifts: number[], host: Sample, viewers: Sample[] }> {
  const [h, ...vs] = await Promise.all([host, ...viewers].map(async (m) => await sampleOne(m.page)))
  const hostSample = h!
  const at = (now: number): number => hostSample.position + (hostSample.paused ? 0 : (now - hostSample.now) / 1000 * hostSample.rate)
  return { drifts: vs.map((v) => v.position - at(v.now)), host: hostSample, viewers: vs }
}

/**
 * Waits until every viewer is within `within` s of the host for `stable` samples in a row; resolves with the
 * ms it took, rejects after `timeoutMs` with the last drifts.
 */
export async function converged (host: Member, viewers: readonly Member[], options: { within?: number, timeoutMs?: number, stable?: number, intervalMs?: number } = {}): Promise<number> {
  const within = options.within ?? 0.05
  const timeoutMs = options.timeoutMs ?? 5000
  const start = Date.now()
  let inRow = 0
  let last: number[] = []
  while (Date.now() - start < timeoutMs) {
    last = (await drifts(host, viewers)).drifts
    inRow = last.every((d) => Math.abs(d) <= within) ? inRow + 1 : 0
    if (inRow >= (options.stable ?? 3)) return Date.now() - start
    await sleep(options.intervalMs ?? 100)
  }
  throw new Error(`not within ${within * 1000} ms of the host after ${timeoutMs} ms: ${last.map((d, i) => `${viewers[i]!.name} ${(d * 1000).toFixed(0)} ms`).join(', ')}`)
}

/** Samples drift for `durationMs`; one array of drifts (s) per viewer. */
export async function measure (host: Member, viewers: readonly Member[], durationMs: number, intervalMs = 200): Promise<number[][]> {
  const series: number[][] = viewers.map(() => [])
  const end = Date.now() + durationMs
  while (Date.now() < end) {
    const { drifts: d } = await drifts(host, viewers)
    d.forEach((value, i) => { series[i]!.push(value) })
    await sleep(intervalMs)
  }
  return series
}

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]!
}

export const abs = (values: readonly number[]): number[] => values.map((v) => Math.abs(v))

/** Runs `action` on the host's video element. */
export async function hostDoes (host: Member, action: 'play' | 'pause' | { seek: number } | { rate: number }): Promise<void> {
  await host.page.evaluate(async (a) => {
    const v = (globalThis as unknown as PageGlobals).watchParty.video
    if (a === 'play') await v.play()
    else if (a === 'pause') v.pause()
    else if ('seek' in a) v.currentTime = a.seek
    else v.playbackRate = a.rate
  }, action)
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Creates a room over REST as `hostId` (development identity). */
export async function createRoom (baseUrl: string, hostId: string, name = 'Browser test'): Promise<string> {
  const response = await fetch(`${baseUrl}/rooms`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-id': hostId }, body: JSON.stringify({ name }) })
  if (response.status !== 201) throw new Error(`POST /rooms answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { id: string }).id
}
