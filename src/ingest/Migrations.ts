import { SqlClient } from "@effect/sql"
import * as Migrator from "@effect/sql/Migrator"
import { Effect } from "effect"
import createTables from "./migrations/0001_create_tables.ts"
import createReadModels from "./migrations/0002_create_read_models.ts"
import indexReadModelSeries from "./migrations/0003_index_read_model_series.ts"

/** Table in which the `Migrator` keeps the ids of the applied migrations. */
export const MIGRATIONS_TABLE = "sensor_logger_migrations"

/**
 * Key of the transaction-scoped advisory lock that serializes migration runs. The number is
 * arbitrary, but no other advisory lock on the same database may use it.
 */
export const MIGRATIONS_LOCK_KEY = 7_319_400_001

const migrate = Migrator.make({})({
  loader: Migrator.fromRecord({
    "0001_create_tables": createTables,
    "0002_create_read_models": createReadModels,
    "0003_index_read_model_series": indexReadModelSeries
  }),
  table: MIGRATIONS_TABLE
})

/**
 * Applies the schema migrations that have not run yet, in id order, and logs each one applied.
 * The whole run is one transaction that first takes an advisory lock, so concurrent runs
 * (two ingest processes starting on an empty database) wait for each other, and the later one
 * finds every migration applied. A failed migration rolls back the whole run.
 *
 * The `Migrator` of `@effect/sql` 0.52.1 checks for its table and creates it before it takes its
 * own table lock. Without this lock, two runs on an empty PostgreSQL database could both create
 * the table, and one of them failed with a duplicate key or "already exists" error. Creating
 * the table here, under the lock and with the `Migrator`'s column layout, also keeps its
 * existence check (`select 'sensor_logger_migrations'::regclass`) from failing, which would
 * abort this transaction. The `Migrator`'s own transaction becomes a savepoint inside this one.
 */
export const runMigrations = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const applied = yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`select pg_advisory_xact_lock(${MIGRATIONS_LOCK_KEY}::int8)`
    yield* sql`
      create table if not exists ${sql(MIGRATIONS_TABLE)} (
        migration_id integer primary key,
        created_at timestamp with time zone not null default now(),
        name text not null
      )`
    return yield* migrate
  }))
  for (const [id, name] of applied) {
    yield* Effect.logInfo("Applied migration").pipe(Effect.annotateLogs({ migration: `${id}_${name}` }))
  }
}).pipe(Effect.withSpan("Migrations.run"))
