/**
 * Request/response over a child process's IPC channel: the orchestrator calls, a load-generator worker
 * answers. Every call has a deadline, so a stuck worker fails the scenario instead of hanging the bench.
 */
import type { ChildProcess } from 'node:child_process'

export interface RpcRequest {
  rpc: number
  cmd: string
  args: Record<string, unknown>
}

export interface RpcResponse {
  rpc: number
  ok: boolean
  result?: unknown
  error?: string
}

export class RpcClient {
  private next = 1
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()

  constructor (readonly name: string, readonly child: ChildProcess) {
    child.on('message', (message: RpcResponse) => {
      const w = this.waiting.get(message.rpc)
      if (w === undefined) return
      this.waiting.delete(message.rpc)
      clearTimeout(w.timer)
      if (message.ok) w.resolve(message.result)
      else w.reject(new Error(`${name}: ${message.error ?? 'failed'}`))
    })
    child.on('exit', (code, signal) => {
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer)
        w.reject(new Error(`${name} exited (${code ?? signal ?? '?'})`))
      }
      this.waiting.clear()
    })
  }

  async call<T> (cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    const rpc = this.next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rpc)
        reject(new Error(`${this.name}: ${cmd} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(rpc, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.child.send({ rpc, cmd, args } satisfies RpcRequest)
    })
  }
}

/** The worker side: answers each request with its handler's result or error. */
export function serveRpc (handlers: Record<string, (args: Record<string, unknown>) => Promise<unknown>>): void {
  process.on('message', (message: RpcRequest) => {
    const handler = handlers[message.cmd]
    const answer = (response: Omit<RpcResponse, 'rpc'>): void => { process.send?.({ rpc: message.rpc, ...response }) }
    if (handler === undefined) {
      answer({ ok: false, error: `unknown command ${message.cmd}` })
      return
    }
    handler(message.args).then(
      (result) => { answer({ ok: true, result }) },
      (err: unknown) => { answer({ ok: false, error: err instanceof Error ? err.message : String(err) }) }
    )
  })
}
