/**
 * Prometheus metrics of the ingest job, recorded per batch (never per reading) by `IngestJob`.
 * Counters are labelled by topic, and dead letters also by the tag of the error that rejected them.
 * The storage maintenance metrics are recorded per maintenance run by `StorageMaintenance`.
 *
 * @module
 */
import { Clock, Effect, Metric, MetricBoundaries } from "effect"
import type { DeadLetter } from "./DeadLetter.ts"

const recordsConsumed = Metric.counter("sensor_logger_ingest_records_consumed_total", {
  description: "Kafka records fetched and handed to the ingest job, redeliveries included.",
  incremental: true
})
const readingsWritten = Metric.counter("sensor_logger_ingest_readings_written_total", {
  description: "Readings stored in committed batches.",
  incremental: true
})
const rowsWritten = Metric.counter("sensor_logger_ingest_rows_written_total", {
  description: "Metric values (rows of sensor_data) stored in committed batches.",
  incremental: true
})
const sensorsWritten = Metric.counter("sensor_logger_ingest_sensors_written_total", {
  description: "Sensor metadata records stored in committed batches.",
  incremental: true
})
const deadLetters = Metric.counter("sensor_logger_ingest_dead_letters_total", {
  description: "Records sent to a dead-letter topic, by the tag of the error that rejected them.",
  incremental: true
})
const batches = Metric.counter("sensor_logger_ingest_batches_total", {
  description: "Batches handled, by outcome: committed, or reassigned when a rebalance moved the partition first.",
  incremental: true
})
const retries = Metric.counter("sensor_logger_ingest_retries_total", {
  description: "Failed attempts of a batch step that were retried, by step.",
  incremental: true
})

const maintenanceFailures = Metric.counter("sensor_logger_ingest_maintenance_failures_total", {
  description: "Storage maintenance runs of this process (read-model refresh, compression, retention, analyze) that failed.",
  incremental: true
})
const maintenanceLastSuccess = Metric.gauge("sensor_logger_ingest_maintenance_last_success_timestamp_seconds", {
  description: "Unix time, in seconds, at which the last storage maintenance run of this process succeeded."
})

/** Records per batch: 1 to 50,000 in roughly doubling steps. */
const batchSize = Metric.histogram(
  "sensor_logger_ingest_batch_records",
  MetricBoundaries.fromIterable([1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000]),
  "Records in one fetched partition batch."
)

/** Seconds from the start of a batch to its commit: 1 ms to 60 s. */
const flushDuration = Metric.histogram(
  "sensor_logger_ingest_flush_duration_seconds",
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]),
  "Time to decode a batch, write it, send its dead letters and commit its offsets, retries included."
)

/** Counts a fetched batch before it is handled. */
export const recordBatchFetched = (topic: string, records: number) =>
  Effect.all([Metric.incrementBy(Metric.tagged(recordsConsumed, "topic", topic), records), Metric.update(Metric.tagged(batchSize, "topic", topic), records)], {
    discard: true
  })

/** Counts the dead letters of a batch once they were sent, by error tag. */
export const recordDeadLetters = (topic: string, letters: ReadonlyArray<DeadLetter>) => {
  const byTag = new Map<string, number>()
  for (const letter of letters) byTag.set(letter.errorTag, (byTag.get(letter.errorTag) ?? 0) + 1)
  return Effect.forEach(
    byTag,
    ([tag, count]) => Metric.incrementBy(Metric.tagged(Metric.tagged(deadLetters, "topic", topic), "error", tag), count),
    { discard: true }
  )
}

/** Counts a committed batch and its flush time, in seconds. */
export const recordBatchCommitted = (
  topic: string,
  written: { readonly readings: number; readonly rows: number; readonly sensors: number },
  seconds: number
) =>
  Effect.all([
    Metric.incrementBy(Metric.tagged(readingsWritten, "topic", topic), written.readings),
    Metric.incrementBy(Metric.tagged(rowsWritten, "topic", topic), written.rows),
    Metric.incrementBy(Metric.tagged(sensorsWritten, "topic", topic), written.sensors),
    Metric.increment(Metric.tagged(Metric.tagged(batches, "topic", topic), "outcome", "committed")),
    Metric.update(Metric.tagged(flushDuration, "topic", topic), seconds)
  ], { discard: true })

/** Counts a batch dropped because a rebalance moved its partition before the commit. */
export const recordBatchReassigned = (topic: string) =>
  Metric.increment(Metric.tagged(Metric.tagged(batches, "topic", topic), "outcome", "reassigned"))

/** Counts one retried failure of `step` (write, dead-letter send, commit). */
export const recordRetry = (topic: string, step: string) =>
  Metric.increment(Metric.tagged(Metric.tagged(retries, "topic", topic), "step", step))

/**
 * Exports the maintenance failure counter at 0 before the first run, so that `rate()` and
 * `increase()` see the first failure.
 */
export const registerMaintenanceMetrics = Metric.incrementBy(maintenanceFailures, 0)

/** Counts a failed storage maintenance run. */
export const recordMaintenanceFailed = Metric.increment(maintenanceFailures)

/** Sets the time of the last successful storage maintenance run to now. */
export const recordMaintenanceSucceeded = Effect.flatMap(
  Clock.currentTimeMillis,
  (millis) => Metric.set(maintenanceLastSuccess, millis / 1000)
)
