/**
 * In Chromium: a host and two viewers in separate browser contexts, one viewer's clock 7 s fast and one 3 s slow.
 * The viewers follow the host across play, a seek, a pause and resume and a rate change; a late joiner
 * converges. Bounds are loose enough for a busy 2-core machine (the tight targets are the sync bench's).
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { launchChromium, noChromium } from './helpers/chromium.js'
import { MediaServer } from './helpers/media-server.js'
import { abs, converged, createRoom, drifts, hostDoes, measure, openMember, percentile, sleep, type PageGlobals } from './helpers/party.js'

const P95_BOUND = 0.15
const CONVERGE_MS = 5000

t.test('a host and two skewed viewers in Chromium stay together through play, seek, pause, resume and rate', { skip: noChromium() }, async (t) => {
  const server = await createTestApp(t, { listen: true })
  const media = await MediaServer.start(t)
  const browser = await launchChromium(t)
  const roomId = await createRoom(server.baseUrl, 'alice')
  const host = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'alice', video: media.videoUrl })
  const bob = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'bob', skewMs: 7000 })
  const carol = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'carol', skewMs: -3000 })
  const viewers = [bob, carol]
  t.equal(await bob.page.evaluate(() => Date.now() - (globalThis as unknown as PageGlobals).__truth.now() > 6900), true, "bob's page clock is 7 s fast")

  const check = async (label: string): Promise<void> => {
    const ms = await converged(host, viewers, { within: 0.05, timeoutMs: CONVERGE_MS })
    t.pass(`${label}: both viewers within 50 ms of the host after ${ms} ms`)
    const series = await measure(host, viewers, 2500)
    for (const [i, viewer] of viewers.entries()) {
      const p95 = percentile(abs(series[i]!), 95)
      t.ok(p95 <= P95_BOUND, `${label}: ${viewer.name} p95 drift ${(p95 * 1000).toFixed(1)} ms`)
    }
  }

  await hostDoes(host, 'play')
  await check('play')
  const { viewers: playing } = await drifts(host, viewers)
  t.ok(playing.every((v) => !v.paused), 'the viewers play')

  await hostDoes(host, { seek: 60 })
  await check('seek to 60 s')

  await hostDoes(host, 'pause')
  await sleep(1500)
  const paused = await drifts(host, viewers)
  t.ok(paused.host.paused && paused.viewers.every((v) => v.paused), 'everyone paused')
  t.ok(paused.drifts.every((d) => Math.abs(d) <= 0.05), `paused on the host frame (${paused.drifts.map((d) => (d * 1000).toFixed(0)).join(', ')} ms)`)

  await hostDoes(host, 'play')
  await check('resume')

  await hostDoes(host, { rate: 1.5 })
  await check('rate 1.5')
  const rates = (await drifts(host, viewers)).viewers.map((v) => v.rate)
  t.ok(rates.every((r) => r >= 1.5 * 0.9 && r <= 1.5 * 1.1), `the viewers play at about 1.5x (${rates.map((r) => r.toFixed(3)).join(', ')})`)

  const dave = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'dave', skewMs: 2500 })
  const lateMs = await converged(host, [dave], { within: 0.05, timeoutMs: CONVERGE_MS })
  t.pass(`a late joiner is within 50 ms after ${lateMs} ms`)
  const seeks = await dave.page.evaluate(() => (globalThis as unknown as PageGlobals).watchParty.binding?.seeks)
  t.ok(seeks !== undefined && seeks <= 2, `it joined with ${String(seeks)} seek(s), the rest by rate`)
})
