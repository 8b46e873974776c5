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
