/**
 * Prints where a server spent its CPU in a V8 CPU profile (`npm run bench -- --profile` writes one per timed
 * fan-out window, and a whole-run one, to bench/results/profiles/): the top functions and packages by self time,
 * and the split into JavaScript, native code, GC and idle.
 *
 * Usage: npx tsx bench/profile-summary.ts bench/results/profiles/ours.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { summarizeProfile, type CpuProfile } from './lib/profile.js'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } })
if (positionals.length === 0) {
  console.error('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N]')
  process.exit(2)
}
const top = Number(values.top)

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const { totalUs, byFunction, byModule, byKind } = summarizeProfile(profile)
  const print = (title: string, map: Map<string, number>): void => {
    console.log(`\n${title}`)
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${name}`)
    }
  }
  console.log(`${file}: ${(totalUs / 1e6).toFixed(1)} s of samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`)
  console.log(Object.entries(byKind).map(([k, us]) => `${k} ${((us / totalUs) * 100).toFixed(1)} %`).join(', '))
  print('self time by package / source file', byModule)
  print('self time by function', byFunction)
}
