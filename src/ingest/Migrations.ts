import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { Effect } from "effect"
import createTables from "./migrations/0001_create_tables.ts"
import createReadModels from "./migrations/0002_create_read_models.ts"

/**
 * Applies the schema migrations that have not run yet, in id order, in one transaction; the
 * applied ids are kept in `sensor_logger_migrations`. Concurrent starts are serialised by a table
 * lock, so two ingest processes may start together.
 */
export const runMigrations = Effect.gen(function*() {
  const applied = yield* Migrator.make({})({
    loader: Migrator.fromRecord({ "0001_create_tables": createTables, "0002_create_read_models": createReadModels }),
    table: "sensor_logger_migrations"
  })
  for (const [id, name] of applied) {
    yield* Effect.logInfo("Applied migration").pipe(Effect.annotateLogs({ migration: `${id}_${name}` }))
  }
  // The embedded TimescaleDB loads the extension's library on the first call of one of its
  // functions. Until then its planner hooks are missing, and the first insert after a restart
  // failed with "invalid INSERT on the root table of hypertable". This call loads it.
  const sql = yield* SqlClient.SqlClient
  yield* sql`select time_bucket(interval '1 day', now())`
}).pipe(Effect.withSpan("Migrations.run"))

