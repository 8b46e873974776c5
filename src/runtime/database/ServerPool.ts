/**
 * The `pg` connection pool of server mode, created here rather than inside `PgClient.layer` so
 * that its use is visible: the pool's connection counts are published as Prometheus gauges.
 *
 * @module
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect, Layer, Metric, Redacted, Schedule } from "effect"
import * as Pg from "pg"

const connections = Metric.gauge("sensor_logger_database_connections", {
  description: "Open connections of the database pool, by state: active (lent to a query) or idle."
})
const maxConnections = Metric.gauge("sensor_logger_database_connections_max", {
  description: "Size limit of the database pool."
})
const pendingRequests = Metric.gauge("sensor_logger_database_pending_requests", {
  description: "Queries waiting for a connection of the database pool."
})

/** Interval at which the pool's counts are copied to the gauges. */
const sampleInterval = Duration.seconds(1)

/** Options of {@link serverPoolLayer}, those of `PgClient.layer` that server mode uses. */
export interface ServerPoolOptions {
  readonly url: Redacted.Redacted
  readonly maxConnections: number
  readonly applicationName: string
  readonly types: Pg.CustomTypesConfig
}

const publish = (pool: Pg.Pool, max: number) =>
  Effect.all([
    Metric.set(Metric.tagged(connections, "state", "active"), pool.totalCount - pool.idleCount),
    Metric.set(Metric.tagged(connections, "state", "idle"), pool.idleCount),
    Metric.set(maxConnections, max),
    Metric.set(pendingRequests, pool.waitingCount)
  ], { discard: true })

/**
 * A `PgClient` over a pool to the server at `url`. Like `PgClient.layer`, it fails with a
 * `SqlError` when a first `select 1` does not succeed within 5 seconds, and ends the pool when
 * the layer is released.
 */
export const serverPoolLayer = (options: ServerPoolOptions): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  PgClient.layerFromPool({
    applicationName: options.applicationName,
    types: options.types,
    acquire: Effect.gen(function*() {
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new Pg.Pool({
            connectionString: Redacted.value(options.url),
            max: options.maxConnections,
            application_name: options.applicationName,
            types: options.types
          })
        ),
        (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000))
      )
      // The pool removes an idle connection that fails and emits its error here. Without a
      // listener, the emitter would throw it and end the process.
      pool.on("error", () => {})
      yield* Effect.tryPromise({
        try: () => pool.query("select 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(5),
          onTimeout: () => new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
      yield* publish(pool, options.maxConnections).pipe(
        Effect.repeat(Schedule.spaced(sampleInterval)),
        Effect.forkScoped
      )
      return pool
    })
  })
