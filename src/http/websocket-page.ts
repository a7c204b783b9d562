/**
 * `GET /docs/websocket`: the WebSocket protocol as a page, rendered on the server from the AsyncAPI document
 * this app serves at `/asyncapi.json` (read through `app.inject`, so the page shows exactly what clients and
 * generators download).
 *
 * Contract: every message of `components.messages` is listed with its summary and its payload schema (each
 * property: type, whether required, constraints, description; references to shared schemas link to their
 * section, which follows), grouped by direction from the document's operations (`receive`: client to server;
 * `send`: server to client). No script, nothing loaded from elsewhere; the page keeps PAGE_CSP. The document
 * is read once, on the first request, and the page kept; a document that cannot be read answers 503.
 */
import type { FastifyInstance } from 'fastify'
import { AppError } from '../errors.js'
import { escapeHtml, page, PAGE_CSP } from './html.js'

export const WEBSOCKET_PAGE = '/docs/websocket'
const ASYNCAPI_URL = '/asyncapi.json'

type Json = Record<string, unknown>

export function registerWebSocketPage (app: FastifyInstance): void {
  let rendered: string | undefined
  app.get(WEBSOCKET_PAGE, { schema: { hide: true }, helmet: { contentSecurityPolicy: PAGE_CSP } }, async (_request, reply) => {
    if (rendered === undefined) {
      const answer = await app.inject({ method: 'GET', url: ASYNCAPI_URL })
      if (answer.statusCode !== 200) throw new AppError('SERVICE_UNAVAILABLE', `the AsyncAPI document could not be read (${answer.statusCode})`)
      rendered = renderWebSocketPage(answer.json())
    }
    return await reply.type('text/html; charset=utf-8').send(rendered)
  })
}

export function renderWebSocketPage (document: Json): string {
  const info = object(document.info)
  const components = object(document.components)
  const messages = object(components.messages)
  const schemas = object(components.schemas)
  const direction = directions(object(document.operations))

  const groups: Array<{ id: string, title: string, names: string[] }> = [
    { id: 'client-to-server', title: 'Client to server (requests)', names: [] },
    { id: 'server-to-client', title: 'Server to client (events)', names: [] },
    { id: 'other', title: 'Other messages', names: [] }
  ]
  for (const name of Object.keys(messages)) {
    const to = direction.get(name)
    groups[to === 'receive' ? 0 : to === 'send' ? 1 : 2]?.names.push(name)
  }
  const shown = groups.filter((g) => g.names.length > 0)

  const toc = shown.map((g) => `<li><a href="#${g.id}">${escapeHtml(g.title)}</a><ul>${
    g.names.map((n) => `<li><a href="#message-${anchor(n)}"><code>${escapeHtml(titleOf(n, object(messages[n])))}</code></a></li>`).join('')
  }</ul></li>`).join('')
  const schemaToc = Object.keys(schemas).map((n) => `<li><a href="#schema-${anchor(n)}"><code>${escapeHtml(n)}</code></a></li>`).join('')

  const body = [
    `<h1>${escapeHtml(text(info.title) ?? 'WebSocket protocol')} <span class="muted">${escapeHtml(text(info.version) ?? '')}</span></h1>`,
    `<p><a href="/docs">REST API (OpenAPI)</a> · <a href="${ASYNCAPI_URL}">AsyncAPI document (JSON)</a></p>`,
    paragraphs(text(info.description)),
    servers(object(document.servers)),
    `<nav><h2>Contents</h2><ul>${toc}${schemaToc === '' ? '' : `<li><a href="#schemas">Shared schemas</a><ul>${schemaToc}</ul></li>`}</ul></nav>`,
    ...shown.map((g) => `<h2 id="${g.id}">${escapeHtml(g.title)}</h2>${g.names.map((n) => message(n, object(messages[n]))).join('')}`),
    schemaToc === ''
      ? ''
      : `<h2 id="schemas">Shared schemas</h2>${Object.entries(schemas).map(([n, s]) =>
          `<h3 id="schema-${anchor(n)}"><code>${escapeHtml(n)}</code></h3>${paragraphs(text(object(s).description))}${schemaTable(object(s))}`).join('')}`
  ]
  return page(`${text(info.title) ?? 'WebSocket protocol'}: messages`, body.join('\n'))
}

/** Message name -> the action of the operation that lists it (`receive` or `send`). */
function directions (operations: Json): Map<string, string> {
  const result = new Map<string, string>()
  for (const operation of Object.values(operations)) {
    const { action, messages } = object(operation)
    for (const ref of Array.isArray(messages) ? messages : []) {
      const name = text(object(ref).$ref)?.split('/').pop()
      if (name !== undefined && typeof action === 'string') result.set(name, action)
    }
  }
  return result
}

function message (name: string, definition: Json): string {
  const payload = object(definition.payload)
  return `<h3 id="message-${anchor(name)}"><code>${escapeHtml(titleOf(name, definition))}</code></h3>` +
    paragraphs(text(definition.summary)) + paragraphs(text(definition.description)) +
    schemaTable(payload) +
    `<details><summary>JSON Schema of the payload</summary><pre>${escapeHtml(JSON.stringify(payload, null, 2))}</pre></details>`
}

function servers (list: Json): string {
  const rows = Object.entries(list).map(([name, s]) => {
    const server = object(s)
    const address = `${text(server.protocol) ?? ''}://${text(server.host) ?? ''}${text(server.pathname) ?? ''}`
    return `<li><code>${escapeHtml(address)}</code> (${escapeHtml(name)}): ${escapeHtml(text(server.description) ?? '')}</li>`
  })
  return rows.length === 0 ? '' : `<h2>Servers</h2><ul>${rows.join('')}</ul>`
}

/** An object schema as a table of its properties, nested objects indented under their property. */
function schemaTable (schema: Json, depth = 0): string {
  const properties = object(schema.properties)
  if (Object.keys(properties).length === 0) return `<p>${describeType(schema)}</p>`
  const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [])
  const rows = Object.entries(properties).map(([name, raw]) => {
    const property = object(raw)
    const nested = depth < 6 && Object.keys(object(property.properties)).length > 0
      ? `<div class="nested">${schemaTable(property, depth + 1)}</div>`
      : ''
    return `<tr><td><code>${escapeHtml(name)}</code></td><td>${describeType(property)}</td><td>${required.has(name) ? 'yes' : ''}</td>` +
      `<td>${escapeHtml(text(property.description) ?? '')}${constraints(property)}${nested}</td></tr>`
  })
  return `<table><thead><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
}

/** The type of a schema in words: a link for a reference, alternatives joined with "or". */
function describeType (schema: Json): string {
  const ref = text(schema.$ref)
  if (ref !== undefined) {
    const name = ref.split('/').pop() ?? ref
    return `<a href="#schema-${anchor(name)}"><code>${escapeHtml(name)}</code></a>`
  }
  if ('const' in schema) return `<code>${escapeHtml(JSON.stringify(schema.const))}</code>`
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => `<code>${escapeHtml(JSON.stringify(v))}</code>`).join(' | ')
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key]
    if (Array.isArray(options)) return options.map((o) => describeType(object(o))).join(' or ')
  }
  const type = schema.type
  if (type === 'array') return `array of ${describeType(object(schema.items))}`
  if (Array.isArray(type)) return type.map((t) => escapeHtml(String(t))).join(' or ')
  if (typeof type === 'string') return escapeHtml(type)
  return 'any'
}

const CONSTRAINTS = ['format', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems', 'default'] as const

function constraints (schema: Json): string {
  const parts = CONSTRAINTS.filter((k) => schema[k] !== undefined).map((k) => `${k} <code>${escapeHtml(typeof schema[k] === 'string' ? schema[k] : JSON.stringify(schema[k]))}</code>`)
  if (schema.additionalProperties === false) parts.push('no other fields')
  return parts.length === 0 ? '' : `<div class="muted">${parts.join('; ')}</div>`
}

function paragraphs (value: string | undefined): string {
  if (value === undefined || value.trim() === '') return ''
  return value.split(/\n{2,}/).map((p) => `<p>${escapeHtml(p).replace(/`([^`]+)`/g, '<code>$1</code>')}</p>`).join('')
}

function titleOf (name: string, definition: Json): string {
  return text(definition.title) ?? text(definition.name) ?? name
}

/** A fragment id safe in HTML and URLs. */
function anchor (name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, (c) => `.${c.charCodeAt(0).toString(16)}`)
}

function object (value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Json : {}
}

function text (value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}
