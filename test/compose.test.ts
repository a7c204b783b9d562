/**
 * The deployment files, checked statically: there is no Docker engine in CI, so `docker compose config`
 * cannot run. docker-compose.yml must wire PostgreSQL 16 and the app with health checks and only the
 * variables src/config.ts reads; the Dockerfile must build and start the app the way the README says.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import { INT_VARIABLES, loadConfig } from '../src/config.js'

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')

interface Service {
  image?: string
  build?: unknown
  environment?: Record<string, string | number | boolean | null> | string[]
  depends_on?: Record<string, { condition?: string }> | string[]
  healthcheck?: { test?: string | string[], interval?: string, retries?: number }
  ports?: string[]
  expose?: Array<string | number>
  command?: string[]
  volumes?: string[]
  deploy?: { replicas?: number }
}

const compose = parse(read('docker-compose.yml')) as { services?: Record<string, Service> }
const services = compose.services ?? {}

/** Environment as a map, whichever of the two compose syntaxes is used. */
function environment (service: Service | undefined): Record<string, string> {
  const env = service?.environment ?? {}
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const i = entry.indexOf('=')
      return i === -1 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)]
    }))
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]))
}

/** Every variable name src/config.ts reads: text('X'), env.X and the INT_VARIABLES table. */
function variablesReadByConfig (): Set<string> {
  const names = new Set<string>(Object.values(INT_VARIABLES).map((rule) => rule.name))
  for (const match of read('src/config.ts').matchAll(/\btext\('([A-Z][A-Z0-9_]*)'\)|\benv\.([A-Z][A-Z0-9_]*)|\benv\['([A-Z][A-Z0-9_]*)'\]/g)) {
    names.add((match[1] ?? match[2] ?? match[3]) as string)
  }
  return names
}

/** The app's environment as compose resolves it with nothing set in the shell: ${VAR:-default} becomes default. */
function resolvedEnvironment (service: Service | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(environment(service)).map(([k, v]) => [k, v.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')]))
}

const healthTest = (service: Service | undefined): string => {
  const test = service?.healthcheck?.test
  return Array.isArray(test) ? test.join(' ') : test ?? ''
}

const [postgresName, postgres] = Object.entries(services).find(([, s]) => /^postgres:16(\.|-|$)/.test(s.image ?? '')) ?? []
const [appName, app] = Object.entries(services).find(([, s]) => s.build !== undefined) ?? []

t.test('docker-compose.yml has a PostgreSQL 16 service with a health check', async (t) => {
  t.type(postgresName, 'string', 'a service runs the postgres:16 image')
  t.match(healthTest(postgres), /pg_isready/, 'healthy once Postgres accepts connections')
  const env = environment(postgres)
  t.ok(env.POSTGRES_PASSWORD !== undefined && env.POSTGRES_PASSWORD !== '', 'the image needs a password to start')
})

t.test('the app service is built here, waits for a healthy Postgres and checks /healthz', async (t) => {
  t.type(appName, 'string', 'a service is built from this repository')
  const dependsOn = app?.depends_on
  t.notOk(Array.isArray(dependsOn), 'depends_on in the long form, with a condition')
  t.equal((dependsOn as Record<string, { condition?: string }> | undefined)?.[postgresName ?? '']?.condition, 'service_healthy')
  t.match(healthTest(app), /\/healthz/)
  t.match(healthTest(app), new RegExp(`:${loadConfig(resolvedEnvironment(app)).port}/healthz`), 'on the port the app listens on')
  t.same(app?.ports ?? [], [], 'the replicas publish no port: the load balancer is the way in')
  t.ok(app?.expose?.map(String).includes('3000'), 'they listen on 3000 inside the network')
})

const [redisName, redis] = Object.entries(services).find(([, s]) => /^redis:7(\.|-|$)/.test(s.image ?? '')) ?? []
const [lbName, lb] = Object.entries(services).find(([, s]) => /^nginx:/.test(s.image ?? '')) ?? []

t.test('cluster mode: Redis without persistence, two replicas on it, nginx in front with the shipped configuration', async (t) => {
  t.type(redisName, 'string', 'a service runs redis:7')
  t.same(redis?.command, ['redis-server', '--save', '', '--appendonly', 'no'], 'Redis keeps nothing on disk (PostgreSQL is the truth)')
  t.match(healthTest(redis), /redis-cli ping/)
  t.equal(app?.deploy?.replicas, 2, 'two replicas of the server')
  const dependsOn = app?.depends_on as Record<string, { condition?: string }> | undefined
  t.equal(dependsOn?.[redisName ?? '']?.condition, 'service_healthy', 'the app waits for a healthy Redis too')
  const config = loadConfig(resolvedEnvironment(app))
  t.ok(config.cluster !== undefined, 'REDIS_URL is set: cluster mode')
  t.equal(new URL(config.cluster?.redisUrl ?? 'redis://invalid').hostname, redisName, 'pointing at the redis service')
  t.type(lbName, 'string', 'a load balancer service runs nginx')
  t.ok(lb?.volumes?.includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'), 'with deploy/nginx.conf, the file the load-balancer test runs')
  t.ok(lb?.ports?.some((p) => String(p) === '3000:80'), 'published on 3000')
  t.equal((lb?.depends_on as Record<string, { condition?: string }> | undefined)?.[appName ?? '']?.condition, 'service_healthy')
  const nginx = read('deploy/nginx.conf')
  t.match(nginx, new RegExp(`server ${appName ?? 'app'}:${config.port}\\b`), 'the upstream is the app service on the port it listens on')
  t.match(nginx, /listen 80;/, 'nginx listens where compose publishes it')
  t.match(nginx, /proxy_set_header Upgrade \$http_upgrade;/, 'WebSocket upgrades pass through')
  t.notMatch(nginx, /^\s*(ip_hash|sticky|hash)\b/m, 'no sticky sessions: any node serves any client')
})

t.test('every variable the app service sets is one src/config.ts reads', async (t) => {
  const known = variablesReadByConfig()
  t.ok(known.has('DATABASE_URL') && known.has('PORT') && known.has('LOG_LEVEL'), 'the names were found in config.ts')
  const env = environment(app)
  t.ok(Object.keys(env).length > 0, 'the app service sets its environment')
  for (const name of Object.keys(env)) t.ok(known.has(name), `${name} is read by src/config.ts`)
})

t.test('the app environment is a valid configuration pointing at the postgres service', async (t) => {
  const config = loadConfig(resolvedEnvironment(app))
  t.type(config.databaseUrl, 'string', 'DATABASE_URL is set: the app runs on Postgres, not the embedded database')
  const url = new URL(config.databaseUrl ?? 'postgres://invalid')
  t.equal(url.hostname, postgresName, 'the host is the postgres service')
  t.equal(url.port === '' ? '5432' : url.port, '5432')
  const pg = environment(postgres)
  t.equal(decodeURIComponent(url.username), pg.POSTGRES_USER ?? 'postgres', 'the user the postgres service creates')
  t.equal(decodeURIComponent(url.password), pg.POSTGRES_PASSWORD, 'its password')
  t.equal(url.pathname.slice(1), pg.POSTGRES_DB ?? pg.POSTGRES_USER ?? 'postgres', 'its database')
  t.equal(config.host, '0.0.0.0', 'reachable from outside the container')
})

t.test('the Dockerfile installs from the lockfile and runs npm start', async (t) => {
  const dockerfile = read('Dockerfile')
  t.match(dockerfile, /^FROM node:(20|22)(-slim)?\b/m, 'an LTS Node image')
  t.match(dockerfile, /^COPY package\.json package-lock\.json /m)
  t.match(dockerfile, /^RUN npm ci\b/m, 'reproducible install from package-lock.json')
  t.match(dockerfile, /^COPY migrations /m, 'the migrations the server applies at start')
  t.match(dockerfile, /^COPY src /m)
  t.match(dockerfile, /^CMD \["npm", "start"\]$/m)
  t.match(dockerfile, /^EXPOSE 3000$/m)
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim())
  for (const path of ['node_modules', 'data', '.git']) t.ok(ignored.includes(path), `${path} stays out of the build context`)
})
