/**
 * Sums the self time of a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --profile`) by function
 * and by package or source file, and prints the top entries: where a server spends its CPU under load.
 *
 * Usage: npx tsx bench/profile-summary.ts bench/results/profiles/ours.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } })
if (positionals.length === 0) {
  console.error('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N]')
  process.exit(2)
}
const top = Number(values.top)

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    // The delta after a sample is the time it stood for.
    const dt = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
  })
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const byFunction = new Map<string, number>()
  const byModule = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    const where = shortUrl(frame.url)
    const fn = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}  ${where === '' ? '' : `${where}:${frame.lineNumber + 1}`}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
    const module = moduleOf(frame.url, frame.functionName)
    byModule.set(module, (byModule.get(module) ?? 0) + us)
  }
  const print = (title: string, map: Map<string, number>): void => {
    console.log(`\n${title}`)
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${name}`)
    }
  }
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s of samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`)
  print('self time by package / source file', byModule)
  print('self time by function', byFunction)
}

function shortUrl (url: string): string {
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length)
  const src = url.indexOf('/src/')
  if (src >= 0) return url.slice(src + 1)
  return url.replace(/^file:\/\//, '')
}

function moduleOf (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith('node:')) return url
  const src = url.indexOf('/src/')
  return src >= 0 ? url.slice(src + 1) : url
}
