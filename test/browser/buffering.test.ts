/**
 * In Chromium: a viewer whose video stops arriving buffers; it holds (no seek storm), the host sees it in
 * viewer_status as buffering while the other viewer shows a small drift, and once the data flows again it
 * catches up with the host.
 */
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { launchChromium, noChromium } from './helpers/chromium.js'
import { MediaServer } from './helpers/media-server.js'
import { converged, createRoom, hostDoes, openMember, sleep, type PageGlobals } from './helpers/party.js'

/**
 * About the first 13 s of the test video (header and cues, then ~2.9 KB a second). Chromium's media cache reads
 * in 32 KiB blocks and hands a player nothing of a block it has not completed, so the cut must be past the first.
 */
const STALL_AFTER_BYTES = 40_000

type Row = { userId: string, drift: number | null, buffering: boolean }

t.test('a buffering viewer is reported to the host, holds, and catches up when data flows again', { skip: noChromium() }, async (t) => {
  const server = await createTestApp(t, { listen: true })
  const media = await MediaServer.start(t)
  const browser = await launchChromium(t)
  const roomId = await createRoom(server.baseUrl, 'alice')
  const host = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'alice', video: media.videoUrl })
  const bob = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'bob', skewMs: 4000, stallAfter: STALL_AFTER_BYTES })
  const carol = await openMember(browser, { baseUrl: server.baseUrl, roomId, userId: 'carol' })
  await hostDoes(host, 'play')
  await converged(host, [carol], { within: 0.05, timeoutMs: 5000 })

  const viewerRows = async (): Promise<Row[]> => await host.page.evaluate(() => [...(globalThis as unknown as PageGlobals).watchParty.room?.viewers ?? []])
  let rows: Row[] = []
  const deadline = Date.now() + 25_000
  while (Date.now() < deadline) {
    rows = await viewerRows()
    if (rows.find((r) => r.userId === 'bob')?.buffering === true) break
    await sleep(200)
  }
  t.ok(media.stalledRequests > 0, "bob's video requests were held")
  const bobRow = rows.find((r) => r.userId === 'bob')
  // Each viewer reports once a second on its own timer: carol's row may trail bob's by a report (longer on
  // a loaded machine). Wait for it, bounded.
  let carolRow = rows.find((r) => r.userId === 'carol')
  const carolDeadline = Date.now() + 10_000
  while ((carolRow?.buffering !== false || carolRow.drift === null) && Date.now() < carolDeadline) {
    await sleep(200)
    carolRow = (await viewerRows()).find((r) => r.userId === 'carol')
  }
  t.equal(bobRow?.buffering, true, 'the host sees bob buffering')
  t.equal(carolRow?.buffering, false, 'and carol playing')
  t.ok(carolRow?.drift !== null && carolRow?.drift !== undefined && Math.abs(carolRow.drift) <= 0.15, `with carol's drift as the server computed it (${((carolRow?.drift ?? NaN) * 1000).toFixed(0)} ms)`)
  const shown = await host.page.evaluate(() => (globalThis as unknown as { document: { getElementById (id: string): { textContent: string } | null } }).document.getElementById('drift-rows')?.textContent ?? '')
  t.match(shown, /bob.*buffering/, "the host's drift panel shows it")

  const seeksWhileStalled = await bob.page.evaluate(() => (globalThis as unknown as PageGlobals).watchParty.binding?.seeks ?? -1)
  await sleep(2000)
  t.equal(await bob.page.evaluate(() => (globalThis as unknown as PageGlobals).watchParty.binding?.seeks ?? -1), seeksWhileStalled, 'no seeks while it buffers')

  media.release()
  const ms = await converged(host, [bob, carol], { within: 0.05, timeoutMs: 8000 })
  t.pass(`once the data flows, bob is back within 50 ms of the host after ${ms} ms`)
  // Reports go out once a second and viewer_status at most once a second: wait for the row to change (bounded).
  const until = Date.now() + 10_000
  do {
    await sleep(250)
    rows = await viewerRows()
  } while (rows.find((r) => r.userId === 'bob')?.buffering !== false && Date.now() < until)
  t.equal(rows.find((r) => r.userId === 'bob')?.buffering, false, 'and the host sees it playing again')
})
