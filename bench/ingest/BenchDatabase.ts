/**
 * The database of a baseline variant, reached with a plain `pg` client and no Effect on the
 * measured path. The schema comes from the project's own migrations, applied before measuring.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Redacted, Scope } from "effect"
import pg from "pg"
import { runMigrations } from "../../src/ingest/Migrations.ts"
import { arrayLiteral } from "../../src/ingest/RowEncoding.ts"
import { makeEmbeddedDatabase } from "../../src/runtime/database/EmbeddedDatabase.ts"

/** A `pg.Client` on the embedded database (one session), a `pg.Pool` on a server. */
export type Queryable = Pick<pg.Pool, "query">

export interface BenchDatabase {
  readonly mode: "embedded" | "server"
  readonly client: Queryable
  readonly close: () => Promise<void>
}

/** Rows of `sensor_data` as the column arrays that `insertRows` passes to `unnest`. */
export interface Columns {
  readonly times: Array<number>
  readonly sensorIds: Array<number>
  readonly metricIds: Array<number>
  readonly values: Array<number>
}

const migrate = (layer: ReturnType<typeof PgClient.layer>) =>
  Effect.runPromise(runMigrations.pipe(Effect.provide(layer), Effect.scoped))

/**
 * Opens the database of `DATABASE_URL` when set, otherwise a fresh in-memory embedded
 * TimescaleDB, applies the migrations and connects: a pool of `poolSize` on a server, one client
 * on the embedded database. On a server the caller must
 * have emptied the schema first (see `resetServerSchema`).
 */
export const openBenchDatabase = async (databaseUrl: string | undefined, poolSize: number): Promise<BenchDatabase> => {
  if (databaseUrl !== undefined) {
    await migrate(PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 1 }))
    const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize })
    return { mode: "server", client: pool, close: () => pool.end() }
  }
  const scope = Effect.runSync(Scope.make())
  const embedded = await Effect.runPromise(Scope.extend(makeEmbeddedDatabase("memory://"), scope))
  const credentials = { user: "postgres", password: "postgres", database: "postgres" }
  // The migration's pool must close before the plain client connects: the embedded database is one session.
  await migrate(PgClient.layer({ stream: embedded.makeStream, maxConnections: 1, username: credentials.user, password: Redacted.make(credentials.password), database: credentials.database }))
  const client = new pg.Client({ stream: embedded.makeStream, ...credentials })
  await client.connect()
  // One statement at a time: the session runs them in turn anyway, and `pg` deprecates queueing
  // a query while another is in flight on the same client.
  let last: Promise<unknown> = Promise.resolve()
  const serialized: Queryable = {
    query: ((...args: Parameters<pg.Client["query"]>) => {
      const next = last.then(() => (client.query as (...a: typeof args) => Promise<unknown>)(...args))
      last = next.catch(() => undefined)
      return next
    }) as Queryable["query"]
  }
  return {
    mode: "embedded",
    client: serialized,
    close: async () => {
      await client.end()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}

/** Drops and recreates the `public` schema of a server database, so each variant starts empty. */
export const resetServerSchema = async (databaseUrl: string): Promise<void> => {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query("drop schema if exists public cascade")
    await client.query("create schema public")
  } finally {
    await client.end()
  }
}

/** Returns the versions of TimescaleDB and PostgreSQL, such as `2.28.3 on PostgreSQL 15.20`. */
export const timescaledbVersion = async (client: Queryable): Promise<string> => {
  const result = await client.query<{ extversion: string | null; server: string }>(
    "select (select extversion from pg_extension where extname = 'timescaledb') as extversion, current_setting('server_version') as server"
  )
  const row = result.rows[0]
  return `${row?.extversion ?? "missing"} on PostgreSQL ${row?.server ?? "unknown"}`
}

/** Registers metric names that are not stored yet and returns the id of every name. */
export const resolveMetricIds = async (client: Queryable, names: ReadonlyArray<string>): Promise<Map<string, number>> => {
  await client.query(
    `insert into metrics (name) select name from unnest($1::text[]) as u(name)
     where not exists (select 1 from metrics m where m.name = u.name) on conflict (name) do nothing`,
    [names]
  )
  const result = await client.query<{ id: number; name: string }>("select id, name from metrics where name = any($1::text[])", [names])
  return new Map(result.rows.map((row) => [row.name, Number(row.id)]))
}

/**
 * Writes with the method of the ingest job: four array parameters, sent as literals, to one
 * `insert … select from unnest(…)` upsert.
 */
export const insertRows = async (client: Queryable, columns: Columns): Promise<void> => {
  if (columns.times.length === 0) return
  await client.query(
    `insert into sensor_data (time, sensor_id, metric_id, value)
     select timestamptz 'epoch' + t * interval '1 microsecond', s, m, v
     from unnest($1::int8[], $2::int8[], $3::int4[], $4::float8[]) as u(t, s, m, v)
     on conflict (sensor_id, metric_id, time) do update set value = excluded.value`,
    [arrayLiteral(columns.times), arrayLiteral(columns.sensorIds), arrayLiteral(columns.metricIds), arrayLiteral(columns.values)]
  )
}

export const countRows = async (client: Queryable): Promise<number> => {
  const result = await client.query<{ count: string }>("select count(*) as count from sensor_data")
  return Number(result.rows[0]!.count)
}
