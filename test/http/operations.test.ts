import t from 'tap'
import { createTestApp } from '../helpers/app.js'

const { app } = await createTestApp(t)

t.test('GET /healthz answers 200 without an identity', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /readyz answers 200 while the database answers', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready' })
})

t.test('an unknown route is 404 NOT_FOUND with an ErrorResponse body', async (t) => {
  for (const [method, url] of [['GET', '/nope'], ['POST', '/rooms/extra/segments'], ['PUT', '/rooms']] as const) {
    const res = await app.inject({ method, url, headers: { 'x-user-id': 'alice' } })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message'])
    t.match(res.json(), { error: 'Not Found', code: 'NOT_FOUND' })
  }
  const res = await app.inject({ method: 'GET', url: '/nope?secret=1' })
  t.equal(res.json().message, 'no route GET /nope', 'the message names the path without its query')
})

t.test('GET /metrics serves Prometheus text with request durations by route and status', async (t) => {
  await app.inject({ method: 'POST', url: '/rooms', headers: { 'x-user-id': 'metered' }, payload: { name: 'Measured' } })
  await app.inject({ method: 'GET', url: '/rooms/not-a-uuid', headers: { 'x-user-id': 'metered' } })
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.match(res.body, /^# HELP http_request_duration_seconds /m)
  t.match(res.body, /^# TYPE http_request_duration_seconds histogram$/m)
  const bucket = (method: string, route: string, status: number) =>
    new RegExp(`^http_request_duration_seconds_count\\{[^}]*method="${method}"[^}]*route="${route.replace(/[{}/]/g, '\\$&')}"[^}]*status="${status}"[^}]*\\} [1-9]`, 'm')
  t.match(res.body, bucket('POST', '/rooms', 201), 'the created room was counted under its route')
  t.match(res.body, bucket('GET', '/rooms/:roomId', 400), 'routes are labelled by pattern, not by path')
  t.match(res.body, /^process_cpu_user_seconds_total /m, 'process metrics')
  t.match(res.body, /^nodejs_heap_size_used_bytes /m, 'Node.js runtime metrics')
})

t.test('GET /openapi.json is an OpenAPI 3.1 document of every route', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  t.type(doc.info.title, 'string')
  t.type(doc.info.version, 'string')

  t.hasOwnProps(doc.components.schemas, ['Room', 'SyncData', 'ErrorResponse'], 'the shared shapes are named components')
  t.same(doc.components.schemas.ErrorResponse.required, ['error', 'message', 'code'])
  t.same([...doc.components.schemas.Room.required].sort(), ['createdAt', 'currentVideo', 'hostId', 'id', 'isActive', 'name', 'participants'])
  t.same([...doc.components.schemas.SyncData.required].sort(), ['currentTime', 'isPlaying', 'playbackRate', 'roomId', 'updatedAt', 'videoUrl'])

  const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([path, methods]) => Object.keys(methods).filter((m) => m !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`))
  for (const expected of ['POST /rooms', 'GET /rooms', 'GET /rooms/{roomId}', 'DELETE /rooms/{roomId}', 'GET /healthz', 'GET /readyz', 'GET /metrics']) {
    t.ok(operations.includes(expected), `documents ${expected}`)
  }

  const create = doc.paths['/rooms'].post
  t.equal(create.responses['201'].content['application/json'].schema.$ref, '#/components/schemas/Room', 'POST /rooms answers a Room')
  for (const status of ['400', '401', '429']) {
    t.equal(create.responses[status].content['application/json'].schema.$ref, '#/components/schemas/ErrorResponse', `POST /rooms ${status} is an ErrorResponse`)
  }
  t.same(create.requestBody.content['application/json'].schema.required, ['name'])
  const one = doc.paths['/rooms/{roomId}']
  t.equal(one.get.responses['404'].content['application/json'].schema.$ref, '#/components/schemas/ErrorResponse')
  t.ok(one.delete.responses['204'], 'DELETE documents its 204')
  t.ok(one.delete.responses['403'], 'DELETE documents NOT_HOST')
  const list = doc.paths['/rooms'].get
  t.same(list.parameters.map((p: { name: string, in: string }) => `${p.in}:${p.name}`).sort(), ['query:cursor', 'query:limit'])
  t.equal(list.responses['200'].content['application/json'].schema.properties.rooms.items.$ref, '#/components/schemas/Room')

  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? []
  for (const ref of new Set(refs)) {
    const name = /#\/components\/schemas\/([^"]+)"/.exec(ref)?.[1]
    t.ok(name !== undefined && doc.components.schemas[name] !== undefined, `${ref} resolves inside the document`)
  }
})

t.test('GET /docs is a page that renders the OpenAPI document', async (t) => {
  let res = await app.inject({ method: 'GET', url: '/docs' })
  if (res.statusCode >= 300 && res.statusCode < 400) {
    const location = res.headers.location
    t.type(location, 'string', 'a redirect says where to')
    res = await app.inject({ method: 'GET', url: new URL(location as string, 'http://localhost/docs').pathname })
  }
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/html/)
  t.match(res.body, /<div id="swagger-ui">/)
  const scripts = [...res.body.matchAll(/<script src="([^"]+)"/g)].map((m) => new URL(m[1] as string, 'http://localhost/docs/').pathname)
  t.ok(scripts.length >= 2, 'the page loads the Swagger UI scripts')
  for (const src of scripts) {
    const script = await app.inject({ method: 'GET', url: src })
    t.equal(script.statusCode, 200, `${src} is served`)
    t.match(script.headers['content-type'], /javascript/)
  }
  const spec = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(spec.statusCode, 200, 'the page finds the document next to it')
  t.same(spec.json(), (await app.inject({ method: 'GET', url: '/openapi.json' })).json(), 'the same document as /openapi.json')
})
