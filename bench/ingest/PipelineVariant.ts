/**
 * The sensor-logger ingest job as users run it: the same layers as `sensor-logger ingest`, with
 * its topics, group and database taken from the environment the benchmark sets.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { IngestLive, KafkaFromConfig } from "../../src/cli/Layers.ts"
import { IngestStats } from "../../src/ingest/IngestStats.ts"
import { Database } from "../../src/runtime/database/Database.ts"
import { LoggingLive } from "../../src/runtime/Logging.ts"
import type { BacklogShape } from "./Backlog.ts"
import { startMeter, type VariantResult } from "./VariantResult.ts"

export const runPipelineVariant = (shape: BacklogShape): Promise<VariantResult> =>
  Effect.gen(function*() {
    const meter = startMeter()
    const stats = yield* IngestStats
    const sql = yield* SqlClient.SqlClient
    // The layers are built: the database is open, migrations ran, the consumer is joining.
    meter.markStart()
    let totals = yield* stats.totals
    while (totals.readings < shape.readings) {
      yield* Effect.sleep("50 millis")
      totals = yield* stats.totals
    }
    const figures = meter.stop()
    const [count] = yield* sql<{ count: number }>`select count(*)::int8 as count from sensor_data`
    const [version] = yield* sql<{ extversion: string | null; server: string }>`
      select (select extversion from pg_extension where extname = 'timescaledb') as extversion,
             current_setting('server_version') as server`
    return {
      variant: "pipeline",
      readings: totals.readings,
      rows: count!.count,
      seconds: (totals.lastCommitMillis! - totals.firstBatchStartMillis!) / 1000,
      ...figures,
      timescaledb: `${version?.extversion ?? "missing"} on PostgreSQL ${version?.server ?? "unknown"}`,
      database: process.env["DATABASE_URL"] === undefined ? "embedded" : "server"
    } satisfies VariantResult
  }).pipe(
    Effect.provide(IngestLive.pipe(Layer.provideMerge(Layer.merge(KafkaFromConfig, Database.layer)))),
    Effect.provide(LoggingLive),
    Effect.scoped,
    Effect.runPromise
  )
