/**
 * The Node.js versions the project says it runs on are the ones its dependencies support: package.json's
 * `engines` is a subset of every installed package's `engines.node` (so `npm install` on any of those
 * versions prints no EBADENGINE warning), and the README names the lowest of them.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import t from 'tap'
import { createTestApp } from '../helpers/app.js'

interface SemverApi {
  subset (sub: string, dom: string): boolean
  minVersion (range: string): { version: string } | null
  satisfies (version: string, range: string): boolean
}
// semver ships no types of its own; it is installed for fastify, which depends on it.
const semver = createRequire(import.meta.url)('semver') as SemverApi

const root = new URL('../../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } }
interface LockEntry { version?: string, engines?: { node?: string } | string[], optional?: boolean, link?: boolean }
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as { packages: Record<string, LockEntry> }
const ours = pkg.engines.node

t.test('every locked dependency supports every Node.js version package.json allows', async (t) => {
  const unsupported: string[] = []
  let checked = 0
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.link === true || entry.optional === true) continue
    const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node
    if (node === undefined) continue
    checked++
    if (!semver.subset(ours, node)) unsupported.push(`${path}@${entry.version ?? '?'} wants node ${node}`)
  }
  t.ok(checked > 50, `engines were read from the lockfile (${checked} packages declare one)`)
  t.same(unsupported, [], `no dependency refuses a version in ${ours}`)
})

t.test('package.json allows Node 20 (what CI runs) and the current LTS lines, and this process', async (t) => {
  for (const version of ['20.19.0', '22.13.0', '24.0.0']) t.ok(semver.satisfies(version, ours), `${version} is in ${ours}`)
  t.ok(semver.satisfies(process.versions.node, ours), `the Node.js running the tests (${process.versions.node}) is allowed`)
})

t.test('the README names the lowest Node.js version package.json allows', async (t) => {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const lowest = semver.minVersion(ours)?.version
  t.equal(lowest, '20.19.0')
  const stated = /Node\.js (\d+\.\d+)(?:\.\d+)? or newer/.exec(readme)?.[1]
  t.equal(`${stated ?? 'nothing'}.0`, lowest, 'the README\'s "Node.js X or newer" is the minimum of engines')
})

// The pinned content-disposition (via @fastify/static) and cookie (via light-my-request) are the code paths
// these run through: the overrides in package.json must not have broken them.
t.test('the overridden dependencies still work where the app uses them', async (t) => {
  // @fastify/static loads content-disposition when it is loaded and calls its `create` for downloads.
  const fromStatic = createRequire(createRequire(import.meta.url).resolve('@fastify/static'))
  const { create } = fromStatic('content-disposition') as { create: (filename: string) => string }
  t.equal(create('Friday movie.mp4'), 'attachment; filename="Friday movie.mp4"', 'content-disposition as @fastify/static calls it')
  const { app } = await createTestApp(t)
  const page = await app.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(page.statusCode, 200, 'swagger-ui\'s static files are served (@fastify/static)')
  const echoed = await app.inject({ method: 'GET', url: '/healthz', cookies: { a: 'b c' } })
  t.equal(echoed.statusCode, 200)
  t.equal(echoed.raw.req.headers.cookie, 'a=b%20c', 'inject encodes cookies (light-my-request, cookie)')
})
