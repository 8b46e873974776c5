import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { Database, embeddedDataDir } from "./src/runtime/database/Database.ts"
import { readContinuousAggregateStates } from "./src/runtime/database/ReadModels.ts"
const time = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>) => Effect.gen(function*() {
  for (let i = 0; i < 3; i++) {
    const t = performance.now(); yield* effect; console.log(label, (performance.now() - t).toFixed(1), "ms")
  }
})
await Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* time("catalog states", readContinuousAggregateStates(sql))
  yield* time("watermark only", sql`select _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id) from _timescaledb_catalog.continuous_agg ca`)
  yield* time("1m cagg day", sql`select bucket, value_count, value_sum from sensor_data_1m c where c.metric_id = 1 and c.sensor_id = 17 and c.bucket >= '2026-11-24T03:11:00Z' and c.bucket < '2026-11-25T03:10:00Z'`)
  yield* time("raw day", sql`select time_bucket('1 minute', time), count(*), sum(value) from sensor_data d where d.metric_id = 1 and d.sensor_id = 17 and d.time >= '2026-11-24T03:10:54Z' and d.time < '2026-11-25T03:10:54Z' group by 1`)
  yield* time("raw edge", sql`select count(*), sum(value) from sensor_data d where d.metric_id = 1 and d.sensor_id = 17 and ((d.time >= '2026-11-24T03:10:54Z' and d.time < '2026-11-24T03:11:00Z') or (d.time >= '2026-11-25T03:10:00Z' and d.time < '2026-11-25T03:10:54Z'))`)
  const plan = yield* sql<{ "QUERY PLAN": string }>`explain analyze select bucket, value_count, value_sum from sensor_data_1m c where c.metric_id = 1 and c.sensor_id = 17 and c.bucket >= '2026-11-24T03:11:00Z' and c.bucket < '2026-11-25T03:10:00Z'`
  console.log(plan.map((r) => Object.values(r)[0]).join("\n"))
  const plan2 = yield* sql<{ "QUERY PLAN": string }>`explain analyze select count(*), sum(value) from sensor_data d where d.metric_id = 1 and d.sensor_id = 17 and ((d.time >= '2026-11-24T03:10:54Z' and d.time < '2026-11-24T03:11:00Z') or (d.time >= '2026-11-25T03:10:00Z' and d.time < '2026-11-25T03:10:54Z'))`
  console.log(plan2.map((r) => Object.values(r)[0]).join("\n"))
}).pipe(Effect.provide(Database.layerEmbedded(embeddedDataDir("/work/bench-emb"))), Effect.scoped, Effect.runPromise)
