/**
 * Serves the test video over HTTP on loopback, as a CDN would (Range requests answered with 206, so players can
 * seek), for the browser tests and the sync bench: nothing is fetched from the internet.
 *
 * A request with the header `x-stall-after: <byte>` (a test sets it in one browser context with page.route) is
 * served up to that byte and then held, connection open and nothing more sent, until `release()`: that player
 * runs out of data and buffers while the others play on.
 */
import { readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export const VIDEO_FILE = fileURLToPath(new URL('../../fixtures/video/timecode.webm', import.meta.url))
/** Length of the test video, s. */
export const VIDEO_SECONDS = 120

export class MediaServer {
  private readonly held = new Set<() => void>()
  /** Requests answered, by whether they were held. */
  requests = 0
  stalledRequests = 0

  private constructor (private readonly server: http.Server, readonly port: number) {}

  static async start (t?: Teardown): Promise<MediaServer> {
    const body = readFileSync(VIDEO_FILE)
    const server = http.createServer()
    server.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const media = new MediaServer(server, (server.address() as AddressInfo).port)
    server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => { media.serve(request, response, body) })
    t?.teardown(async () => { await media.close() })
    return media
  }

  get videoUrl (): string {
    return `http://127.0.0.1:${this.port}/timecode.webm`
  }

  /** Lets every held response finish. */
  release (): void {
    for (const resume of [...this.held]) resume()
    this.held.clear()
  }

  async close (): Promise<void> {
    this.release()
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private serve (request: http.IncomingMessage, response: http.ServerResponse, body: Buffer): void {
    this.requests++
    if (request.url?.split('?')[0] !== '/timecode.webm') {
      response.writeHead(404).end()
      return
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '')
    const start = range === null ? 0 : Number(range[1])
    const end = range === null || range[2] === '' ? body.length - 1 : Math.min(Number(range[2]), body.length - 1)
    if (start >= body.length) {
      response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end()
      return
    }
    const headers = {
      'content-type': 'video/webm',
      'accept-ranges': 'bytes',
      'content-length': String(end - start + 1),
      'cache-control': 'no-store',
      'access-control-allow-origin': '*'
    }
    if (range === null) response.writeHead(200, headers)
    else response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}` })
    if (request.method === 'HEAD') {
      response.end()
      return
    }
    const stallAt = Number(request.headers['x-stall-after'] ?? NaN)
    if (!Number.isFinite(stallAt) || stallAt > end) {
      response.end(body.subarray(start, end + 1))
      return
    }
    this.stalledRequests++
    if (stallAt > start) response.write(body.subarray(start, stallAt))
    const resume = (): void => { response.end(body.subarray(Math.max(start, stallAt), end + 1)) }
    this.held.add(resume)
    response.once('close', () => { this.held.delete(resume) })
  }
}
