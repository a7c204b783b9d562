/**
 * Heap snapshots of a server process through its inspector (the bench starts every server with
 * `--inspect=127.0.0.1:0`), and their aggregate by constructor: what tells which objects an idle connection
 * costs. `diffPerConnection` subtracts two aggregates and divides by the connections opened in between.
 */
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import WebSocket from 'ws'

/** Collects garbage twice, then writes a heap snapshot of the process behind `url` to `file`. */
export async function takeHeapSnapshot (url: string, file: string, timeoutMs = 300_000): Promise<void> {
  const socket = new WebSocket(url, { maxPayload: 1024 ** 3 })
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => { resolve() })
    socket.once('error', reject)
  })
  const out = createWriteStream(file)
  let next = 1
  const call = async (method: string, params: Record<string, unknown> = {}): Promise<void> => {
    const id = next++
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`inspector ${method} timed out`)) }, timeoutMs)
      const onMessage = (data: WebSocket.RawData): void => {
        const message = JSON.parse(data.toString()) as { id?: number, method?: string, params?: { chunk?: string }, error?: { message: string } }
        if (message.method === 'HeapProfiler.addHeapSnapshotChunk') {
          out.write(message.params?.chunk ?? '')
          return
        }
        if (message.id !== id) return
        socket.off('message', onMessage)
        clearTimeout(timer)
        if (message.error !== undefined) reject(new Error(`inspector ${method}: ${message.error.message}`))
        else resolve()
      }
      socket.on('message', onMessage)
      socket.send(JSON.stringify({ id, method, params }))
    })
  }
  try {
    await call('HeapProfiler.collectGarbage')
    await call('HeapProfiler.collectGarbage')
    await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false })
  } finally {
    socket.close()
    await new Promise<void>((resolve) => { out.end(() => { resolve() }) })
  }
}

export interface Aggregate { count: number, size: number }

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]], edge_fields: string[], edge_types: [string[], ...unknown[]], location_fields?: string[] } }
  nodes: number[]
  edges: number[]
  locations?: number[]
  strings: string[]
}

/** Node types whose name says little: with `owners`, keyed by their first strong retainer as well. */
const ANONYMOUS = /^(array|hidden|closure|object:Object$|object:Array$|object:system \/ Context$|object:Set$|object:Map$|object:Promise$)/

/** Count and self size of the snapshot's nodes, by `type:name` (strings and numbers by type alone). */
export async function aggregate (file: string, owners = false): Promise<Map<string, Aggregate>> {
  const snap = JSON.parse(await readFile(file, 'utf8')) as Snapshot
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const edgeCountAt = fields.indexOf('edge_count')
  const baseKey = (i: number): string => {
    const type = types[snap.nodes[i + typeAt]!]!
    const byName = !['string', 'concatenated string', 'sliced string', 'number', 'heap number', 'regexp'].includes(type)
    let name = byName ? snap.strings[snap.nodes[i + nameAt]!]! : ''
    if (name.length > 60) name = `${name.slice(0, 60)}…`
    return `${type}:${name}`
  }
  // Closures by source location (script id:line), and each node's first strong retainer.
  const where = new Map<number, string>()
  const owner = new Map<number, string>()
  if (owners) {
    const lf = snap.snapshot.meta.location_fields ?? []
    const loc = snap.locations ?? []
    for (let j = 0; j < loc.length; j += lf.length) where.set(loc[j + lf.indexOf('object_index')]!, `@${loc[j + lf.indexOf('script_id')]!}:${loc[j + lf.indexOf('line')]! + 1}`)
    const ef = snap.snapshot.meta.edge_fields
    const et = snap.snapshot.meta.edge_types[0]
    const ew = ef.length
    const toAt = ef.indexOf('to_node')
    const etAt = ef.indexOf('type')
    const nameOrIndexAt = ef.indexOf('name_or_index')
    let e = 0
    for (let i = 0; i < snap.nodes.length; i += width) {
      const count = snap.nodes[i + edgeCountAt]!
      for (let k = 0; k < count; k++, e += ew) {
        const edgeType = et[snap.edges[e + etAt]!]!
        if (edgeType === 'weak' || edgeType === 'shortcut') continue
        const to = snap.edges[e + toAt]!
        if (owner.has(to)) continue
        const edgeName = edgeType === 'element' || edgeType === 'hidden' ? '[]' : String(snap.strings[snap.edges[e + nameOrIndexAt]!] ?? '')
        owner.set(to, `${baseKey(i)}${where.get(i) ?? ''}.${edgeName.slice(0, 30)}`)
      }
    }
  }
  const out = new Map<string, Aggregate>()
  for (let i = 0; i < snap.nodes.length; i += width) {
    let key = baseKey(i) + (where.get(i) ?? '')
    if (owners && ANONYMOUS.test(key)) key += ` <- ${owner.get(i) ?? '?'}`
    const entry = out.get(key) ?? { count: 0, size: 0 }
    entry.count++
    entry.size += snap.nodes[i + sizeAt]!
    out.set(key, entry)
  }
  return out
}

/** Per connection: (after - before) / connections, largest first; only rows of at least `minBytes` a connection. */
export function diffPerConnection (before: Map<string, Aggregate>, after: Map<string, Aggregate>, connections: number, minBytes = 4): Array<{ key: string, perConn: number, bytesPerConn: number }> {
  const rows: Array<{ key: string, perConn: number, bytesPerConn: number }> = []
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, size: 0 }
    const bytesPerConn = (a.size - b.size) / connections
    if (Math.abs(bytesPerConn) >= minBytes) rows.push({ key, perConn: Math.round((a.count - b.count) / connections * 100) / 100, bytesPerConn: Math.round(bytesPerConn) })
  }
  return rows.sort((x, y) => y.bytesPerConn - x.bytesPerConn)
}
