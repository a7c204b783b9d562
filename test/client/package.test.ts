/**
 * The package as a consumer gets it: `npm pack` of packages/client builds it (prepack), the tarball holds the
 * ESM build with its type declarations, and the build runs on its own: no runtime import of anything (the
 * protocol package is used for types only), so Node loads it from an unpacked tarball with no node_modules.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

t.test('npm pack builds the package; the tarball runs without dependencies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wp-client-pack-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const output = execFileSync('npm', ['pack', '-w', 'packages/client', '--pack-destination', dir, '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const [packed] = JSON.parse(output.slice(output.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed!.files.map((f) => f.path)
  for (const file of ['package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/client.js', 'dist/room.d.ts']) t.ok(files.includes(file), `the tarball has ${file}`)
  t.notOk(files.some((f) => f.startsWith('test/') || f.endsWith('.tgz')), 'nothing but the package')
  execFileSync('tar', ['-xzf', join(dir, packed!.filename), '-C', dir])
  const pkg = join(dir, 'package')
  const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { type: string, exports: { '.': Record<string, string> }, dependencies: Record<string, string> }
  t.equal(manifest.type, 'module')
  t.equal(manifest.exports['.']!.types, './dist/index.d.ts')
  t.same(Object.keys(manifest.dependencies), ['@watch-party/protocol'], 'the protocol package is the only dependency')
  const modules = readdirSync(join(pkg, 'dist'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'))
  t.ok(modules.length >= 10, `${modules.length} modules`)
  for (const file of modules) {
    const source = readFileSync(join(pkg, 'dist', file), 'utf8')
    const imports = [...source.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!)
    t.ok(imports.every((specifier) => specifier.startsWith('./') || specifier.startsWith('../')), `${file} imports only the package's own modules (${imports.join(', ') || 'none'})`)
  }
  t.notOk(existsSync(join(pkg, 'node_modules')), 'no node_modules beside the unpacked package')
  const probe = `const m = await import(${JSON.stringify(join(pkg, 'dist', 'index.js'))});` +
    'console.log(JSON.stringify({ client: typeof m.WatchPartyClient, codes: m.CLOSE_CODES, exp: m.tokenExpiresAt("x." + Buffer.from(JSON.stringify({ exp: 2 })).toString("base64url") + ".y") }))'
  const result = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir, encoding: 'utf8' })) as { client: string, codes: Record<string, number>, exp: number }
  t.equal(result.client, 'function')
  t.equal(result.codes.SERVICE_RESTART, 1012)
  t.equal(result.exp, 2000)
})
