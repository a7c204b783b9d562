/**
 * `npm run db:migrate`: applies pending migrations to DATABASE_URL, or to the embedded database in DATA_DIR
 * when DATABASE_URL is unset. Exits 0 when the schema is current, 1 with a message otherwise.
 */
import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from './client.js'

async function main (): Promise<void> {
  const config = loadConfig()
  const handle = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 })
  try {
    await handle.migrate()
    console.log(`migrations applied (${handle.kind === 'postgres' ? 'Postgres' : `embedded PGlite in ${config.dataDir}`})`)
  } finally {
    await handle.close()
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
