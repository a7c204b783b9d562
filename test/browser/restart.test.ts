/**
 * In Chromium, against the server as a process: SIGTERM mid-play and a restart on the same port and database.
 * The viewers keep playing in step while the server is away (each follows the last state on its own clock
 * estimate), every page reconnects and catches up on its own, and no page reloads.
 */
import t from 'tap'
import { serverDatabase, startServer } from '../helpers/server-process.js'
import { launchChromium, noChromium } from './helpers/chromium.js'
import { MediaServer } from './helpers/media-server.js'
import { abs, converged, createRoom, drifts, hostDoes, measure, openMember, percentile, sleep, type Member, type PageGlobals } from './helpers/party.js'

const ENV = { DISCONNECT_GRACE_MS: '60000' }

async function states (members: readonly Member[]): Promise<string[]> {
  return await Promise.all(members.map(async (m) => await m.page.evaluate(() => (globalThis as unknown as PageGlobals).watchParty.client?.state ?? 'none')))
}

t.test('server SIGTERM and restart mid-play: viewers keep playing, reconnect, catch up; no page reloads', { skip: noChromium() }, async (t) => {
  const database = await serverDatabase(t)
  const first = await startServer(t, { database, env: ENV })
  const media = await MediaServer.start(t)
  const browser = await launchChromium(t)
  const roomId = await createRoom(first.baseUrl, 'alice')
  const host = await openMember(browser, { baseUrl: first.baseUrl, roomId, userId: 'alice', video: media.videoUrl })
  const bob = await openMember(browser, { baseUrl: first.baseUrl, roomId, userId: 'bob', skewMs: 5000 })
  const carol = await openMember(browser, { baseUrl: first.baseUrl, roomId, userId: 'carol', skewMs: -2000 })
  const members = [host, bob, carol]
  const viewers = [bob, carol]
  let navigations = 0
  for (const m of members) {
    await m.page.evaluate(() => { (globalThis as unknown as PageGlobals).__marker = 'still the first page' })
    m.page.on('framenavigated', (frame) => { if (frame === m.page.mainFrame()) navigations++ })
  }
  await hostDoes(host, 'play')
  await converged(host, viewers, { within: 0.05, timeoutMs: 5000 })

  first.kill('SIGTERM')
  t.equal((await first.exited).code, 0, 'the server stopped cleanly')
  const downAt = Date.now()
  const before = await drifts(host, viewers)
  await sleep(2500)
  const whileDown = await drifts(host, viewers)
  t.ok((await states(members)).every((s) => s === 'reconnecting' || s === 'connecting'), 'every page is reconnecting')
  for (const [i, viewer] of viewers.entries()) {
    t.ok(!whileDown.viewers[i]!.paused && whileDown.viewers[i]!.position - before.viewers[i]!.position > 2, `${viewer.name} kept playing while the server was down`)
  }
  const downSeries = await measure(host, viewers, 1500)
  t.ok(downSeries.every((s) => percentile(abs(s), 95) <= 0.15), `and in step with the host (p95 ${downSeries.map((s) => (percentile(abs(s), 95) * 1000).toFixed(0)).join(', ')} ms)`)

  const second = await startServer(t, { database, env: { ...ENV, PORT: String(first.port) } })
  const backAt = Date.now()
  t.equal(second.port, first.port)
  const deadline = Date.now() + 15_000
  while (!(await states(members)).every((s) => s === 'connected') && Date.now() < deadline) await sleep(100)
  t.same(await states(members), ['connected', 'connected', 'connected'], `every page reconnected on its own (${Date.now() - backAt} ms after the server listened, ${backAt - downAt} ms down)`)
  const ms = await converged(host, viewers, { within: 0.05, timeoutMs: 5000 })
  t.pass(`within 50 ms of the host ${ms} ms after reconnecting`)
  await hostDoes(host, { seek: 30 })
  await converged(host, viewers, { within: 0.05, timeoutMs: 5000 })
  t.pass('and they follow the host again (a seek after the restart)')
  const markers = await Promise.all(members.map(async (m) => await m.page.evaluate(() => (globalThis as unknown as PageGlobals).__marker)))
  t.same(markers, ['still the first page', 'still the first page', 'still the first page'], 'no page reloaded (the window marker is there)')
  t.equal(navigations, 0, 'no navigation at all')
})
