import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { continuousAggregates } from "../../runtime/database/ReadModels.ts"

/**
 * Indexes each continuous aggregate by series and bucket: `(sensor_id, metric_id, bucket)`.
 *
 * TimescaleDB's default indexes of a continuous aggregate are `(sensor_id, bucket)` and
 * `(metric_id, bucket)`. A request for one sensor and metric then depends on the statistics to
 * choose between them. Without statistics (the embedded database never analyzes on its own), the
 * planner chose `(metric_id, bucket)` for one sensor's day in the 1-minute model of 20 million
 * rows and filtered out 332,667 rows of other sensors to return 333; that request took 100 to
 * 500 ms. With this index it read the 333 rows in about 10 ms.
 *
 * On an existing database the index is built over the materialised rows (63 s for 20 million rows
 * on the embedded database), inside the migration's transaction.
 */
export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const aggregate of continuousAggregates) {
    yield* sql.unsafe(`create index if not exists ${aggregate.name}_series_idx on ${aggregate.name} (sensor_id, metric_id, bucket)`)
  }
})
