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

/** One DevTools-protocol session with a server process's inspector. */
export class InspectorSession {
  private next = 1

  private constructor (private readonly socket: WebSocket, private readonly timeoutMs: number) {}

  static async open (url: string, timeoutMs = 60_000): Promise<InspectorSession> {
    const socket = new WebSocket(url)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => { resolve() })
      socket.once('error', reject)
    })
    return new InspectorSession(socket, timeoutMs)
  }

  async call (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.next++
    const socket = this.socket
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`inspector ${method} timed out`)) }, this.timeoutMs)
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

  close (): void {
    this.socket.close()
  }
}

/** Full garbage collection, then process.memoryUsage() of the process behind `url`. */
export async function memoryAfterGc (url: string, timeoutMs = 60_000): Promise<MemoryUsage> {
  const session = await InspectorSession.open(url, timeoutMs)
  try {
    // Twice: the first pass can leave weakly held and finalized objects for the second.
    await session.call('HeapProfiler.collectGarbage')
    await session.call('HeapProfiler.collectGarbage')
    const result = await session.call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })
    const value = (result.result as { value?: string } | undefined)?.value
    if (value === undefined) throw new Error('inspector: process.memoryUsage() gave nothing')
    return JSON.parse(value) as MemoryUsage
  } finally {
    session.close()
  }
}

/**
 * Starts V8's sampling CPU profiler (the one behind `--cpu-prof`) in the process behind `url`; the returned
 * function stops it and resolves with the profile (a .cpuprofile JSON object) of just that window.
 */
export async function startCpuProfile (url: string, intervalUs = 200): Promise<() => Promise<unknown>> {
  const session = await InspectorSession.open(url)
  await session.call('Profiler.enable')
  await session.call('Profiler.setSamplingInterval', { interval: intervalUs })
  await session.call('Profiler.start')
  return async () => {
    try {
      return (await session.call('Profiler.stop')).profile
    } finally {
      session.close()
    }
  }
}
