/**
 * Readiness probes of the platform's dependencies: a database `select 1` and a Kafka cluster
 * metadata request. The health registry bounds each with `HEALTH_CHECK_TIMEOUT_MS`.
 *
 * @module
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { DatabaseInfo } from "../database/Database.ts"
import { KafkaClient } from "../kafka/KafkaClient.ts"
import { KafkaError } from "../kafka/KafkaError.ts"
import { type CheckResult, down, up } from "./Health.ts"

/**
 * Runs `select 1` on the database the caller provides.
 *
 * NOTE: on the embedded database a statement blocks the event loop, so a probe queued behind a
 * long write completes late instead of timing out.
 */
export const databaseProbe: Effect.Effect<Effect.Effect<CheckResult, unknown>, never, SqlClient.SqlClient | DatabaseInfo> =
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const info = yield* DatabaseInfo
    return sql`select 1 as ok`.pipe(
      Effect.map((rows) => rows.length === 1 ? up({ mode: info.mode }) : down("select 1 returned no row", { mode: info.mode })),
      // Probes every few seconds would fill a trace view with `select 1` spans.
      Effect.withTracerEnabled(false)
    )
  })

/**
 * Connects a Kafka admin client that fails at once rather than retrying, and returns a probe
 * that requests the cluster's metadata. The client disconnects when the scope closes.
 */
export const kafkaProbe = Effect.gen(function*() {
  const { kafka } = yield* KafkaClient
  const admin = kafka.admin({ retry: { retries: 0 } })
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => admin.disconnect()).pipe(Effect.interruptible, Effect.timeout("5 seconds"), Effect.ignore)
  )
  return Effect.tryPromise({
    // connect() returns at once while a broker connection is up, and reconnects after an outage.
    try: async () => {
      await admin.connect()
      return admin.describeCluster()
    },
    catch: (cause) => new KafkaError({ operation: "describe cluster", cause })
  }).pipe(
    Effect.map((cluster) => up({ brokers: cluster.brokers.length, controller: cluster.controller })),
    Effect.catchAll((error) => Effect.succeed(down(error.message)))
  )
})
