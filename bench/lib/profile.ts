/**
 * Sums a V8 CPU profile (`--cpu-prof`, or a window taken through the inspector) by function, by package or
 * source file, and by kind of code: JavaScript (ours, dependencies', Node's own lib/), native (C++ reached
 * from JavaScript: Node's bindings, libuv, and the system calls made from them, e.g. `writeBuffer`), garbage
 * collection, and idle. The profile samples the main thread's wall time, so a system call's time shows as its
 * native caller's self time; /proc's user/system split (CpuMeter.split) tells kernel time apart.
 */

export interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export type CodeKind = 'js' | 'native' | 'gc' | 'idle' | 'other'

export interface ProfileSummary {
  totalUs: number
  byFunction: Map<string, number>
  byModule: Map<string, number>
  byKind: Record<CodeKind, number>
}

export function summarizeProfile (profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    // The delta after a sample is the time it stood for.
    const dt = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
  })
  const byFunction = new Map<string, number>()
  const byModule = new Map<string, number>()
  const byKind: Record<CodeKind, number> = { js: 0, native: 0, gc: 0, idle: 0, other: 0 }
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    totalUs += us
    const where = shortUrl(frame.url)
    const fn = `${frame.functionName === '' ? '(anonymous)' : frame.functionName}  ${where === '' ? '' : `${where}:${frame.lineNumber + 1}`}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
    const module = moduleOf(frame.url, frame.functionName)
    byModule.set(module, (byModule.get(module) ?? 0) + us)
    byKind[kindOf(frame.url, frame.functionName)] += us
  }
  return { totalUs, byFunction, byModule, byKind }
}

function kindOf (url: string, functionName: string): CodeKind {
  if (url !== '') return 'js'
  if (functionName === '(garbage collector)') return 'gc'
  if (functionName === '(idle)') return 'idle'
  if (functionName.startsWith('(')) return 'other'
  return 'native'
}

export function shortUrl (url: string): string {
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
