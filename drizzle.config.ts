import { defineConfig } from 'drizzle-kit'

// drizzle-kit generates SQL migrations into migrations/ from src/db/schema.ts.
// Applying them is the project's own migrator (`npm run db:migrate`), which also serves PGlite.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' }
})
