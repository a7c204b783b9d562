/**
 * `GET /demo`: a watch party in the browser (demo/), with its script bundled from the client SDK's source by
 * esbuild on the first request (no build step: `npm install && npm start` serves it), then kept in memory.
 *
 * Contract:
 * * Registered only when the demo's source is there (a deployment may leave demo/ out): then / links it.
 * * The page has its own Content-Security-Policy: scripts and styles from this origin only, media from any
 *   http: or https: URL (the host picks the video), and connections to this origin, its WebSocket included
 *   (ws: and wss: of the Host it was served from, spelled out for browsers whose 'self' does not cover ws:).
 *   Every other route keeps the API's policy.
 */
import { existsSync, readFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'

const DEMO_DIR = fileURLToPath(new URL('../../demo/', import.meta.url))
const ENTRY = `${DEMO_DIR}main.ts`
/** A Host header as browsers send it: a name or an address, and a port; anything else gets no ws: source. */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

const ownSockets = (request: IncomingMessage): string => {
  const host = request.headers.host
  return host !== undefined && HOST.test(host) ? `ws://${host} wss://${host}` : "'self'"
}

export const DEMO_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    mediaSrc: ['http:', 'https:'],
    connectSrc: ["'self'", (request: IncomingMessage) => ownSockets(request)],
    imgSrc: ["'self'", 'data:'],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    objectSrc: ["'none'"]
  }
}

export function hasDemo (): boolean {
  return existsSync(ENTRY)
}

let bundle: Promise<string> | undefined

/** The page's script: demo/main.ts with the client SDK, from source (the `watch-party-source` condition). */
export async function buildDemoScript (): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import('esbuild')
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['watch-party-source'],
      minify: true,
      sourcemap: 'inline',
      write: false,
      logLevel: 'silent'
    })
    return result.outputFiles[0]!.text
  })()
  bundle.catch(() => { bundle = undefined })
  return await bundle
}

export async function demoRoutes (app: FastifyInstance): Promise<void> {
  if (!hasDemo()) return
  const html = readFileSync(`${DEMO_DIR}index.html`, 'utf8')
  const css = readFileSync(`${DEMO_DIR}demo.css`, 'utf8')
  app.get('/demo', { schema: { hide: true }, helmet: { contentSecurityPolicy: DEMO_CSP } }, async (_request, reply) =>
    await reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html))
  app.get('/demo/demo.css', { schema: { hide: true } }, async (_request, reply) =>
    await reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(css))
  app.get('/demo/app.js', { schema: { hide: true } }, async (_request, reply) =>
    await reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(await buildDemoScript()))
}
