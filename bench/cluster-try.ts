/**
 * The cluster scenario alone, with the knobs bench/run.ts does not expose yet (for A/B runs of a change in
 * src/cluster): `npx tsx --conditions=watch-party-source bench/cluster-try.ts --out DIR [bench flags]
 * [--nodes 2,3] [--kinds ours] [--no-failover]`. Writes DIR/cluster-try.json and .md (the cluster section only).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ClusterBench, renderCluster, type ClusterKind } from './lib/cluster.js'
import { parseOptions } from './lib/options.js'
import { ROOT } from './lib/proc.js'

const argv = process.argv.slice(2)
const take = (flag: string): string | undefined => {
  const i = argv.indexOf(flag)
  if (i === -1) return undefined
  const [, value] = argv.splice(i, 2)
  return value
}
const nodes = take('--nodes')
const kinds = take('--kinds')
const noFailover = argv.indexOf('--no-failover')
if (noFailover !== -1) argv.splice(noFailover, 1)
const options = Object.assign(parseOptions(['--scenarios', 'cluster', ...argv]), {
  ...(nodes === undefined ? {} : { clusterNodes: nodes.split(',').map(Number) }),
  ...(kinds === undefined ? {} : { clusterKinds: kinds.split(',') as ClusterKind[] })
})
if (noFailover !== -1) options.clusterFailovers = 0
const results = await new ClusterBench(options, options.redisUrl, (line) => { console.log(line) }).run()
const dir = resolve(ROOT, options.outDir)
mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'cluster-try.json'), JSON.stringify(results, null, 2))
writeFileSync(join(dir, 'cluster-try.md'), renderCluster(results).join('\n'))
console.log(`written to ${join(dir, 'cluster-try.md')}`)
process.exit(Object.keys(results.errors).length > 0 ? 1 : 0)
