/**
 * Load-generator worker processes (bench/loadgen/worker.ts), each driven over IPC. Scenarios that need more
 * sockets than one process may open (20,000 files per process here) start extra ones with `startWorkers`
 * and stop them with `stopWorkers`.
 */
import { spawnNode, stopChild } from './proc.js'
import { RpcClient } from './rpc.js'

let started = 0

/** Starts `count` workers at scheduling priority `nice`; their output goes to stderr prefixed with their name. */
export function startWorkers (count: number, nice = 0): RpcClient[] {
  return Array.from({ length: count }, () => {
    const name = `loadgen ${started++}`
    const child = spawnNode({
      script: 'bench/loadgen/worker.ts',
      env: { ...process.env, NODE_OPTIONS: undefined },
      ipc: true,
      nice,
      output: (chunk) => { process.stderr.write(`[${name}] ${chunk.toString('utf8')}`) }
    })
    return new RpcClient(name, child)
  })
}

/** Asks each worker to exit, then makes sure it did. */
export async function stopWorkers (workers: RpcClient[]): Promise<void> {
  await Promise.all(workers.map(async (w) => {
    await w.call('exit', {}, 5000).catch(() => {})
    await stopChild(w.child, 3000)
  }))
}
