import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Database, embeddedDataDir } from "./src/runtime/database/Database.ts"
const time = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>, n = 3) => Effect.gen(function*() {
  for (let i = 0; i < n; i++) {
    const t = performance.now(); yield* effect; console.log(label, (performance.now() - t).toFixed(1), "ms")
  }
})
await Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const day = sql`select bucket, value_count, value_sum from sensor_data_1m c where c.metric_id = 1 and c.sensor_id = 17 and c.bucket >= '2026-11-24T03:11:00Z' and c.bucket < '2026-11-25T03:10:00Z'`
  const stats = yield* sql`select relname, n_live_tup, last_analyze, last_autoanalyze from pg_stat_user_tables where relname like '%hyper_2_%chunk' or relname = 'sensor_latest' limit 5`
  console.log(stats)
  yield* time("analyze 1m cagg", sql`analyze sensor_data_1m`, 1)
  yield* time("1m cagg day after analyze", day)
  yield* time("analyze sensor_data", sql`analyze sensor_data`, 1)
  yield* time("analyze others", sql`analyze sensor_data_1h; analyze sensor_data_1d; analyze sensor_latest`.unprepared, 1)
}).pipe(Effect.provide(Database.layerEmbedded(embeddedDataDir("/work/bench-emb"))), Effect.scoped, Effect.runPromise)
