/**
 * The process: reads config, opens the database, makes sure it is the only process serving it, migrates it,
 * serves the app, and shuts down gracefully on SIGTERM/SIGINT (sockets closed with 1012, playback flushed,
 * pool closed, exit 0) within SHUTDOWN_TIMEOUT_MS; exit 1 when the deadline passed or playback state could not
 * be written.
 * A bad configuration exits 1 with a message naming the variable. An embedded DATA_DIR another process has
 * open exits 1 (src/db/data-dir-lock.ts). On PostgreSQL the process holds the process lock
 * (src/db/process-lock.ts) before it migrates or listens: with SINGLE_PROCESS_LOCK=wait it does not listen
 * until the other process stopped (so no load balancer or probe takes it for a serving node, and nothing it
 * answers can disagree with the serving process); with `refuse` it exits 1 naming the holder. A lock another
 * process took while this one's lock connection was down stops this process (graceful close, exit 1).
 */
import type { Socket } from 'node:net'
import { ConfigError, isJwtMode, loadConfig, type Config } from './config.js'
import { openDatabase, type DatabaseHandle } from './db/client.js'
import { DataDirInUseError } from './db/data-dir-lock.js'
import { ProcessLock, ProcessLockHeldError } from './db/process-lock.js'
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

  let database: DatabaseHandle
  try {
    database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolMax: config.databasePoolMax,
      onPoolError: (err) => { app.log.warn({ err }, 'idle database connection failed') }
    })
  } catch (err) {
    if (err instanceof DataDirInUseError) {
      console.error(`refusing to start: ${err.message}`)
      process.exit(1)
    }
    throw err
  }
  // Built before the database is touched (the app reads nothing until it is ready), for its logger.
  const { app, rooms } = await buildApp({ config, database })
  if (!isJwtMode(config.auth)) {
    app.log.warn('development identity: user ids are taken from x-user-id / ?userId= as sent; set AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL in production')
  }
  if (config.allowedOrigins === undefined) {
    app.log.warn('ALLOWED_ORIGINS is unset: pages from any origin may call the REST API and open WebSockets; list your frontend origins in production')
  }

  // Every TCP connection, upgraded WebSockets included: shutdown destroys whatever is still open once
  // clients had their chance to complete the close handshake, so one silent client cannot hold the exit.
  const sockets = new Set<Socket>()
  // One listener for all sockets (not a closure each: idle connections are most of the memory).
  function forget (this: Socket): void { sockets.delete(this) }
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', forget)
  })

  let closing = false
  let serving = false
  let lock: ProcessLock | undefined
  const waitForLock = new AbortController()
  /** `failed`: the process must not exit 0 however cleanly it closes (it lost its database to another process). */
  const shutdown = (signal: string, failed = false): void => {
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
    if (!serving) {
      // Still waiting for the lock or migrating: nothing was served, nothing is pending.
      waitForLock.abort(new Error(`stopped by ${signal}`))
      void Promise.allSettled([database.close(), lock?.release()]).then(() => {
        app.log.info({ ms: Date.now() - startedAt }, 'shut down before serving')
        process.exit(failed ? 1 : 0)
      })
      return
    }
    const handshakeOver = setTimeout(() => {
      if (sockets.size > 0) app.log.warn({ sockets: sockets.size }, 'closing connections that did not finish closing')
      for (const socket of sockets) socket.destroy()
    }, closeHandshakeMs(config.shutdownTimeoutMs))
    handshakeOver.unref()
    // app.close(): no new connections, every WebSocket closed with 1012, pending playback written.
    // Exit 0 only when nothing was lost: state the database did not take (an outage) makes it 1.
    // The lock is let go last: a process waiting for it starts only once this one's last writes are in.
    app.close()
      .then(async () => {
        const unsaved = rooms.pendingPlaybackWrites
        await database.close()
        await lock?.release()
        return unsaved
      })
      .then((unsaved) => {
        if (unsaved > 0) {
          app.log.error({ rooms: unsaved, ms: Date.now() - startedAt }, 'shut down; the playback state of these rooms could not be written')
          process.exit(1)
        }
        app.log.info({ ms: Date.now() - startedAt }, 'shut down')
        process.exit(failed ? 1 : 0)
      }, (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      })
  }
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })

  // Cluster mode is for several processes on one database: no single-process lock there.
  if (database.kind === 'postgres' && config.databaseUrl !== undefined && config.cluster === undefined) {
    try {
      lock = await ProcessLock.acquire({
        url: config.databaseUrl,
        mode: config.singleProcessLock,
        log: app.log,
        signal: waitForLock.signal,
        onTakenOver: (holder) => {
          app.log.error({ holder }, 'another server process serves this database now; stopping this one (exit 1)')
          shutdown('process lock lost', true)
        }
      })
    } catch (err) {
      if (closing) return // a signal ended the wait; shutdown() exits
      if (err instanceof ProcessLockHeldError) {
        app.log.error({ holder: err.holder }, `refusing to start: ${err.message}`)
        console.error(`refusing to start: ${err.message}`)
        process.exit(1)
      }
      throw err
    }
  }
  await database.migrate()
  app.log.info({ database: database.kind === 'postgres' ? 'postgres' : `embedded PGlite (${config.dataDir})` }, 'database ready')
  if (closing) return
  serving = true
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
