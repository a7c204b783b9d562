/**
 * The README and the docs/ pages link only to files of the repository that exist, and to headings that exist
 * in them (GitHub's anchors), so a page that moves or a heading that is renamed cannot leave a dead link.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import t from 'tap'

const root = new URL('../../', import.meta.url)
const pages = ['README.md', ...readdirSync(new URL('docs/', root)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

/** GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`. */
function slug (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

function anchorsOf (path: string): Set<string> {
  const text = readFileSync(new URL(path, root), 'utf8')
  const anchors = new Set<string>()
  let fenced = false
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line)
    if (heading !== null) anchors.add(slug(heading[1] ?? ''))
  }
  return anchors
}

t.test('every relative link of the README and docs/ reaches a file, and its #anchor a heading', async (t) => {
  let links = 0
  for (const page of pages) {
    const text = readFileSync(new URL(page, root), 'utf8').replace(/```[\s\S]*?```/g, '')
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] ?? ''
      if (/^[a-z]+:/.test(target)) continue // http(s), mailto: not this test's business
      links++
      const [file = '', anchor] = target.split('#')
      const resolved = file === '' ? page : new URL(file, new URL(page, root)).pathname.slice(new URL(root).pathname.length)
      t.notOk(resolved.startsWith('../') || resolved.includes('/../'), `${page}: ${target} stays inside the repository`)
      t.ok(existsSync(new URL(resolved, root)), `${page}: ${target} exists (${resolved})`)
      if (anchor !== undefined && existsSync(new URL(resolved, root))) {
        t.ok(anchorsOf(resolved).has(anchor), `${page}: ${target} names a heading of ${resolved}`)
      }
    }
  }
  t.ok(links > 10, `links were found (${links})`)
})

t.test('the slug of a heading is GitHub\'s', async (t) => {
  t.equal(slug('Cross-origin access: `ALLOWED_ORIGINS`'), 'cross-origin-access-allowed_origins')
  t.equal(slug('Legacy 1-on-1 channels (deprecated)'), 'legacy-1-on-1-channels-deprecated')
  t.equal(slug('What a client does on 1012'), 'what-a-client-does-on-1012')
})
