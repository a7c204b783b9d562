/**
 * A real app on a fresh database for one test file, optionally listening on an ephemeral loopback port
 * (needed for WebSocket tests). Closed in teardown.
 */
import type { FastifyInstance } from 'fastify'
import { buildApp, type App, type AppDependencies } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { createTestDatabase, type TestDatabase } from './database.js'

interface Teardown { teardown (fn: () => Promise<void> | void): void }

export interface TestApp extends App {
  database: TestDatabase
  config: Config
  /** http://127.0.0.1:port when listening. */
  baseUrl: string
  /** ws://127.0.0.1:port/ws when listening. */
  wsUrl: string
}

export interface TestAppOptions {
  env?: Record<string, string>
  listen?: boolean
  /** Reuse a database (restart tests); by default each app gets a fresh one. */
  database?: TestDatabase
  deps?: Partial<Omit<AppDependencies, 'config' | 'database'>>
}

export async function createTestApp (t: Teardown, options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? await createTestDatabase(t)
  const config = loadConfig({ LOG_LEVEL: 'silent', ...options.env })
  const built = await buildApp({ config, database: database.handle, logger: false, ...options.deps })
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await built.app.close()
  }
  t.teardown(close)
  let baseUrl = ''
  let wsUrl = ''
  if (options.listen === true) {
    await built.app.listen({ port: 0, host: '127.0.0.1' })
    const address = built.app.server.address()
    if (address === null || typeof address === 'string') throw new Error('app is not listening on a port')
    baseUrl = `http://127.0.0.1:${address.port}`
    wsUrl = `ws://127.0.0.1:${address.port}/ws`
  } else {
    await built.app.ready()
  }
  return { ...built, database, config, baseUrl, wsUrl }
}

export type { FastifyInstance }
