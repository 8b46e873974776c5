import type { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/**
 * The read models that the ingest job creates (migration 0002) and the query service reads. Both
 * sides import this list, so a read model's name and width are stated once.
 *
 * Each continuous aggregate holds, per bucket, sensor and metric, the partial aggregates that
 * compose into coarser buckets: the count, sum, minimum and maximum of the values, and the first
 * and last value with their times.
 */
export interface ContinuousAggregate {
  /** View name in the `public` schema. */
  readonly name: string
  /** Bucket width in seconds; buckets start at multiples of it since 1970 (UTC). */
  readonly widthSeconds: number
  /** The same width as a PostgreSQL interval literal. */
  readonly interval: string
}

/** The continuous aggregates over `sensor_data`, finest first. */
export const continuousAggregates: ReadonlyArray<ContinuousAggregate> = [
  { name: "sensor_data_1m", widthSeconds: 60, interval: "1 minute" },
  { name: "sensor_data_1h", widthSeconds: 3600, interval: "1 hour" },
  { name: "sensor_data_1d", widthSeconds: 86_400, interval: "1 day" }
]

/** The table of the latest value of every sensor and metric, kept by triggers on `sensor_data`. */
export const latestValuesTable = "sensor_latest"

/** State of one continuous aggregate in TimescaleDB's catalog, with times in microseconds since 1970. */
export interface ContinuousAggregateState {
  readonly name: string
  /** End of the materialised data. */
  readonly watermarkMicros: number
  /** Ranges written to since the last refresh, `[lowest, greatest]` inclusive. */
  readonly invalidated: ReadonlyArray<readonly [number, number]>
}

/** The catalog marks open ends with the int8 extremes, which are clamped to JavaScript's safe integers. */
const clampSql = (column: string) => `least(greatest(${column}, -9007199254740991), 9007199254740991)`

/**
 * Reads the watermark and the invalidated ranges of every continuous aggregate of
 * `continuousAggregates` from TimescaleDB's internal catalog (`_timescaledb_catalog` and
 * `_timescaledb_functions`, as in TimescaleDB 2.23). The hypertable's invalidation log counts for
 * every model, because a refresh of any model moves its entries to each model's own log.
 */
export const readContinuousAggregateStates = (sql: SqlClient.SqlClient) =>
  sql<{ name: string; watermark: number; invalidated: Array<[number, number]> }>`
    select ca.user_view_name as name,
           ${sql.literal(clampSql("_timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)"))} as watermark,
           coalesce((
             select json_agg(json_build_array(${sql.literal(clampSql("l.lowest_modified_value"))}, ${sql.literal(clampSql("l.greatest_modified_value"))}))
             from (
               select lowest_modified_value, greatest_modified_value
               from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
               where hypertable_id = ca.raw_hypertable_id
               union all
               select lowest_modified_value, greatest_modified_value
               from _timescaledb_catalog.continuous_aggs_materialization_invalidation_log
               where materialization_id = ca.mat_hypertable_id
             ) l
           ), '[]'::json) as invalidated
    from _timescaledb_catalog.continuous_agg ca
    where ca.user_view_schema = 'public' and ca.user_view_name = any(${continuousAggregates.map((a) => a.name)}::text[])`.pipe(
    Effect.map((rows) =>
      rows.map((row): ContinuousAggregateState => ({ name: row.name, watermarkMicros: row.watermark, invalidated: row.invalidated }))
    )
  )
