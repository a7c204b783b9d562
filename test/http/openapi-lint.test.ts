/**
 * The OpenAPI document passes an independent linter: Redocly CLI (`redocly lint`) with its recommended rules,
 * no error and no warning, for each configuration that changes the document (development identity, JWT mode,
 * a protected /metrics). The linter runs as its own process on the document as GET /openapi.json serves it,
 * from a temporary directory (no redocly.yaml of ours can loosen the rules), offline and without telemetry.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { createTestApp } from '../helpers/app.js'
import { SECRET } from '../helpers/tokens.js'

const REDOCLY = fileURLToPath(new URL('../../node_modules/@redocly/cli/bin/cli.js', import.meta.url))
const run = promisify(execFile)

interface LintReport {
  totals: { errors: number, warnings: number, ignored: number }
  problems: Array<{ ruleId: string, severity: string, message: string, location?: Array<{ pointer?: string }> }>
}

async function lint (document: unknown): Promise<LintReport> {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-lint-'))
  try {
    const file = join(dir, 'openapi.json')
    writeFileSync(file, JSON.stringify(document, null, 2))
    // Exit status 1 means problems were found: the JSON report on stdout says which, so read it either way.
    const result = await run(process.execPath, [REDOCLY, 'lint', '--extends=recommended', '--format=json', '--max-problems=1000', file], {
      cwd: dir,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      maxBuffer: 16 * 1024 * 1024
    }).catch((err: { stdout?: string, stderr?: string }) => {
      if (typeof err.stdout === 'string' && err.stdout.trim().startsWith('{')) return { stdout: err.stdout }
      throw new Error(`redocly did not run: ${err.stderr ?? String(err)}`)
    })
    return JSON.parse(result.stdout) as LintReport
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const CONFIGURATIONS: Array<{ name: string, env: Record<string, string> }> = [
  { name: 'development identity', env: {} },
  { name: 'JWT mode', env: { AUTH_JWT_SECRET: SECRET } },
  { name: 'METRICS_TOKEN set', env: { METRICS_TOKEN: 'a-metrics-token-of-some-length' } }
]

for (const { name, env } of CONFIGURATIONS) {
  t.test(`redocly lint (recommended) finds no error and no warning: ${name}`, async (t) => {
    const { app } = await createTestApp(t, { env })
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const report = await lint(document)
    const listed = report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`)
    t.same(listed, [], 'no problem listed')
    t.equal(report.totals.errors, 0, 'no error')
    t.equal(report.totals.warnings, 0, 'no warning')
    t.equal(report.totals.ignored, 0, 'nothing ignored')
  })
}

t.test('the linter does find problems: a document with the old defects fails', async (t) => {
  const { app } = await createTestApp(t)
  const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const broken = structuredClone(document)
  delete broken.info.license
  broken.servers = []
  delete broken.paths['/rooms'].post.operationId
  const report = await lint(broken)
  const rules = new Set(report.problems.map((p) => p.ruleId))
  for (const rule of ['info-license', 'no-empty-servers', 'operation-operationId']) t.ok(rules.has(rule), `${rule} is reported`)
  t.ok(report.totals.errors + report.totals.warnings >= 3)
})
