/**
 * The process: reads config, opens and migrates the database, serves the app, and shuts down gracefully on
 * SIGTERM/SIGINT (sockets closed with 1012, playback flushed, pool closed, exit 0) within SHUTDOWN_TIMEOUT_MS;
 * exit 1 when the deadline passed or playback state could not be written.
 * A bad configuration exits 1 with a message naming the variable.
 */
import type { Socket } from 'node:net'
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
  const { app, rooms } = await buildApp({ config, database })
  app.log.info({ database: database.kind === 'postgres' ? 'postgres' : `embedded PGlite (${config.dataDir})` }, 'database ready')
  if (!isJwtMode(config.auth)) {
    app.log.warn('development identity: user ids are taken from x-user-id / ?userId= as sent; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL in production')
  }
  if (config.allowedOrigins === undefined) {
    app.log.warn('ALLOWED_ORIGINS is unset: pages from any origin may call the REST API and open WebSockets; list your frontend origins in production')
  }

  // Every TCP connection, upgraded WebSockets included: shutdown destroys whatever is still open once
  // clients had their chance to complete the close handshake, so one silent client cannot hold the exit.
  const sockets = new Set<Socket>()
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => { sockets.delete(socket) })
  })

  let closing = false
  const shutdown = (signal: string): void => {
    if (closing) {
      app.log.info({ signal }, 'already shutting down')
      return
    }
    closing = true
    const startedAt = Date.now()
    app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down')
    const deadline = setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting')
      process.exit(1)
    }, config.shutdownTimeoutMs)
    deadline.unref()
    const handshakeOver = setTimeout(() => {
      if (sockets.size > 0) app.log.warn({ sockets: sockets.size }, 'closing connections that did not finish closing')
      for (const socket of sockets) socket.destroy()
    }, closeHandshakeMs(config.shutdownTimeoutMs))
    handshakeOver.unref()
    // app.close(): no new connections, every WebSocket closed with 1012, pending playback written.
    // Exit 0 only when nothing was lost: state the database did not take (an outage) makes it 1.
    app.close()
      .then(async () => {
        const unsaved = rooms.pendingPlaybackWrites
        await database.close()
        return unsaved
      })
      .then((unsaved) => {
        if (unsaved > 0) {
          app.log.error({ rooms: unsaved, ms: Date.now() - startedAt }, 'shut down; the playback state of these rooms could not be written')
          process.exit(1)
        }
        app.log.info({ ms: Date.now() - startedAt }, 'shut down')
        process.exit(0)
      }, (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })

  await app.listen({ port: config.port, host: config.host })
}

/**
 * How long shutdown waits for clients to answer the 1012 close frame before it drops their connections:
 * long enough for any live client, short enough to leave most of the timeout for the database writes.
 */
function closeHandshakeMs (shutdownTimeoutMs: number): number {
  return Math.min(2000, Math.floor(shutdownTimeoutMs / 4))
}

main().catch((err: unknown) => {
  console.error('failed to start:', err)
  process.exit(1)
})
