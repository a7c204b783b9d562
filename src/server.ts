/**
 * The process: reads config, opens and migrates the database, serves the app, and shuts down gracefully on
 * SIGTERM/SIGINT (sockets closed with 1012, playback flushed, pool closed, exit 0) within SHUTDOWN_TIMEOUT_MS.
 * A bad configuration exits 1 with a message naming the variable.
 */
import { ConfigError, isJwtMode, loadConfig, type Config } from './config.js'
import { openDatabase } from './db/client.js'
import { buildApp } from './app.js'

async function main (): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(1)
    }
    throw err
  }

  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolMax: config.databasePoolMax,
    onPoolError: (err) => { app.log.warn({ err }, 'idle database connection failed') }
  })
  await database.migrate()
  const { app } = await buildApp({ config, database })
  app.log.info({ database: database.kind === 'postgres' ? 'postgres' : `embedded PGlite (${config.dataDir})` }, 'database ready')
  if (!isJwtMode(config.auth)) {
    app.log.warn('development identity: user ids are taken from x-user-id / ?userId= as sent; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL in production')
  }
  if (config.allowedOrigins === undefined) {
    app.log.warn('ALLOWED_ORIGINS is unset: pages from any origin may call the REST API and open WebSockets; list your frontend origins in production')
  }

  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down')
    const deadline = setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    deadline.unref()
    app.close()
      .then(async () => { await database.close() })
      .then(() => { process.exit(0) }, (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })

  await app.listen({ port: config.port, host: config.host })
}

main().catch((err: unknown) => {
  console.error('failed to start:', err)
  process.exit(1)
})
