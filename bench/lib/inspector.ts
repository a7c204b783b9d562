/**
 * Reads a server process's heap the same way for all three servers, without changing any of them: each is
 * started with `--inspect=127.0.0.1:0`, and the bench asks its inspector (over loopback) to collect
 * garbage and report `process.memoryUsage()`.
 */
import WebSocket from 'ws'

export interface MemoryUsage {
  rss: number
  heapTotal: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

/** Finds the inspector URL in a server's stderr. */
export function inspectorUrl (output: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(output)?.[1]
}

/** Full garbage collection, then process.memoryUsage() of the process behind `url`. */
export async function memoryAfterGc (url: string, timeoutMs = 60_000): Promise<MemoryUsage> {
  const socket = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => { resolve() })
    socket.once('error', reject)
  })
  let next = 1
  const call = async (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> => {
    const id = next++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`inspector ${method} timed out`)) }, timeoutMs)
      const onMessage = (data: WebSocket.RawData): void => {
        const message = JSON.parse(data.toString()) as { id?: number, result?: Record<string, unknown>, error?: { message: string } }
        if (message.id !== id) return
        socket.off('message', onMessage)
        clearTimeout(timer)
        if (message.error !== undefined) reject(new Error(`inspector ${method}: ${message.error.message}`))
        else resolve(message.result ?? {})
      }
      socket.on('message', onMessage)
      socket.send(JSON.stringify({ id, method, params }))
    })
  }
  try {
    // Twice: the first pass can leave weakly held and finalized objects for the second.
    await call('HeapProfiler.collectGarbage')
    await call('HeapProfiler.collectGarbage')
    const result = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })
    const value = (result.result as { value?: string } | undefined)?.value
    if (value === undefined) throw new Error('inspector: process.memoryUsage() gave nothing')
    return JSON.parse(value) as MemoryUsage
  } finally {
    socket.close()
  }
}
