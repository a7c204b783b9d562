/**
 * The pages this server renders itself: GET /docs/websocket (from the AsyncAPI document) and GET / (links to
 * the docs, and to /demo exactly when that route exists). Both are HTML with a strict CSP: nothing loads from
 * elsewhere, no script runs, the one inline style sheet is allowed by its hash.
 */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { renderHomePage } from '../../src/http/home-page.js'
import { createTestApp } from '../helpers/app.js'

const { app } = await createTestApp(t)

function directives (csp: string): Map<string, string[]> {
  return new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0] !== '').map(([name, ...values]) => [name as string, values]))
}

/** A page keeps the strict policy: nothing from anywhere but its own inline style, allowed by hash. */
function assertStrictPage (t: Test, res: Awaited<ReturnType<typeof app.inject>>): void {
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  const csp = directives(String(res.headers['content-security-policy']))
  t.same(csp.get('default-src'), ["'none'"], 'default-src none')
  t.same(csp.get('frame-ancestors'), ["'none'"])
  t.notOk(csp.has('script-src'), 'no script source at all (default-src none applies)')
  const styles = [...res.body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] ?? '')
  t.equal(styles.length, 1, 'one inline style sheet')
  const hash = `'sha256-${createHash('sha256').update(styles[0] ?? '').digest('base64')}'`
  t.same(csp.get('style-src'), [hash], 'allowed by its hash, nothing else')
  t.notMatch(res.body, /<script|<link|<img|<iframe|\son[a-z]+=/i, 'no script, no external resource, no handler')
  t.notMatch(res.body, /(src|href)="(https?:)?\/\//, 'no absolute URL to another site')
}

t.test('GET /docs/websocket lists every message of the AsyncAPI document with its schema', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/docs/websocket' })
  assertStrictPage(t, res)
  const asyncapi = (await app.inject({ method: 'GET', url: '/asyncapi.json' })).json() as {
    info: { title: string }
    components: { messages: Record<string, { title?: string, payload: { properties: Record<string, { properties?: Record<string, unknown> }> } }>, schemas: Record<string, unknown> }
  }
  const html = res.body
  t.match(html, `<h1>${asyncapi.info.title}`, 'titled as the document')
  const messages = Object.entries(asyncapi.components.messages)
  t.ok(messages.length > 10, `${messages.length} messages`)
  for (const [name, message] of messages) {
    const start = html.indexOf(`<h3 id="message-${name}">`)
    t.ok(start >= 0, `${name} has a section`)
    const section = html.slice(start, html.indexOf('<h3', start + 1) === -1 ? undefined : html.indexOf('<h3', start + 1))
    t.match(section, `<code>${message.title ?? name}</code>`, `${name} shows its type`)
    for (const field of Object.keys(message.payload.properties.data?.properties ?? {})) {
      t.match(section, `<td><code>${field}</code></td>`, `${name}: data.${field} is in its table`)
    }
    t.match(section, /<details><summary>JSON Schema of the payload<\/summary><pre>/, `${name}: the full schema`)
    t.ok(html.includes(`href="#message-${name}"`), `${name} is in the contents`)
  }
  t.match(html, /<h2 id="client-to-server">/)
  t.match(html, /<h2 id="server-to-client">/)
  for (const schema of Object.keys(asyncapi.components.schemas)) {
    t.match(html, `<h3 id="schema-${schema}">`, `the shared schema ${schema} has a section`)
  }
  for (const [, target] of html.matchAll(/href="#([^"]+)"/g)) t.ok(html.includes(`id="${target as string}"`), `#${target as string} resolves`)
})

t.test('the docs link the WebSocket page, and the WebSocket page links back', async (t) => {
  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { info: { description: string } }
  t.match(openapi.info.description, '](/docs/websocket)', 'the description Swagger UI renders at the top of /docs links it')
  const page = (await app.inject({ method: 'GET', url: '/docs/websocket' })).body
  t.match(page, 'href="/docs"')
  t.match(page, 'href="/asyncapi.json"')
})

t.test('GET / is a page pointing at the docs', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/' })
  assertStrictPage(t, res)
  for (const link of ['/docs', '/docs/websocket', '/openapi.json', '/asyncapi.json']) {
    t.match(res.body, `href="${link}"`, `links ${link}`)
    t.equal((await app.inject({ method: 'GET', url: link })).statusCode < 400, true, `${link} exists`)
  }
  const demo = app.hasRoute({ method: 'GET', url: '/demo' })
  t.equal(res.body.includes('href="/demo"'), demo, `links /demo exactly when the app has it (it ${demo ? 'does' : 'does not'})`)
  if (demo) t.equal((await app.inject({ method: 'GET', url: '/demo' })).statusCode, 200, '/demo answers')
})

t.test('the front page links an optional page only when its route exists', async (t) => {
  const demo = { url: '/demo', title: 'Demo', text: 'a watch party in the browser' }
  t.notMatch(renderHomePage([]), 'href="/demo"', 'absent: no link that would 404')
  t.match(renderHomePage([demo]), 'href="/demo"')
})
