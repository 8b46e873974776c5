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
  const [m] = yield* sql<{ t: string }>`select format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) as t from timescaledb_information.continuous_aggregates where view_name = 'sensor_data_1m'`
  console.log(m)
  yield* time("analyze materialized", sql.unsafe(`analyze ${m!.t}`), 1)
  yield* time("day after analyze", day)
  yield* time("create index", sql`create index if not exists sensor_data_1m_series_idx on sensor_data_1m (sensor_id, metric_id, bucket)`, 1)
  yield* time("day with index", day)
  const plan = yield* sql`explain analyze select bucket, value_count, value_sum from sensor_data_1m c where c.metric_id = 1 and c.sensor_id = 17 and c.bucket >= '2026-11-24T03:11:00Z' and c.bucket < '2026-11-25T03:10:00Z'`
  console.log(plan.map((r) => Object.values(r)[0]).join("\n"))
}).pipe(Effect.provide(Database.layerEmbedded(embeddedDataDir("/work/bench-emb"))), Effect.scoped, Effect.runPromise)
