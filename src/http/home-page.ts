/**
 * `GET /`: a small page that says what this server is and links its documentation, instead of a 404.
 *
 * Contract: it links /docs, /docs/websocket, /openapi.json and /asyncapi.json always, and each page of
 * OPTIONAL_PAGES (the demo) only when that route exists once the app is ready (`hasRoute`), so a link never
 * leads to a 404. It keeps PAGE_CSP: no script, nothing loaded from elsewhere.
 */
import type { FastifyInstance } from 'fastify'
import { escapeHtml, page, PAGE_CSP } from './html.js'
import { WEBSOCKET_PAGE } from './websocket-page.js'

const PAGES = [
  { url: '/docs', title: 'REST API', text: 'every route, its answers and examples (Swagger UI)' },
  { url: WEBSOCKET_PAGE, title: 'WebSocket protocol', text: 'every request and event on /ws, with its schema' },
  { url: '/openapi.json', title: 'OpenAPI 3.1 document', text: 'for client generators' },
  { url: '/asyncapi.json', title: 'AsyncAPI 3 document', text: 'the WebSocket, machine-readable' }
]

/** Pages other parts of the app may register; linked when they do. */
const OPTIONAL_PAGES = [
  { url: '/demo', title: 'Demo', text: 'a watch party in the browser' }
]

export function registerHomePage (app: FastifyInstance): void {
  let html: string | undefined
  app.get('/', { schema: { hide: true }, helmet: { contentSecurityPolicy: PAGE_CSP } }, async (_request, reply) => {
    html ??= renderHomePage(OPTIONAL_PAGES.filter((p) => app.hasRoute({ method: 'GET', url: p.url })))
    return await reply.type('text/html; charset=utf-8').send(html)
  })
}

export function renderHomePage (optional: typeof OPTIONAL_PAGES): string {
  const items = [...optional, ...PAGES]
    .map((p) => `<li><a href="${escapeHtml(p.url)}">${escapeHtml(p.title)}</a>: ${escapeHtml(p.text)}</li>`)
  return page('Watch-party server', [
    '<h1>Watch-party server</h1>',
    '<p>Rooms over REST; playback sync, chat and host hand-over over the WebSocket at <code>/ws</code>.</p>',
    `<ul>${items.join('')}</ul>`,
    '<p class="muted">Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>.</p>'
  ].join('\n'))
}
