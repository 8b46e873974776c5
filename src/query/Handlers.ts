import { HttpApiBuilder } from "@effect/platform"
import type { SqlError } from "@effect/sql"
import { Effect } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { maxBuckets, QueryApi } from "./Api.ts"
import { InvalidQuery, QueryUnavailable } from "./QueryErrors.ts"
import { type ReadingFilter, SensorQueries } from "./SensorQueries.ts"

/** Logs a database failure and fails with a 503 error that contains no SQL text or connection details. */
const unavailable = (error: SqlError.SqlError) => {
  const cause = error.cause as { message?: unknown; code?: unknown } | undefined
  const detail = typeof cause?.message === "string" ? `${error.message}: ${cause.message}` : error.message
  // 42P01 (undefined_table): the ingest job, which owns the schema, has never run on this database.
  const message = cause?.code === "42P01"
    ? "the database has no sensor-logger tables yet; run the ingest job (or all-in-one) once to create them"
    : `the database could not answer: ${detail}`
  return Effect.logError("Query failed").pipe(
    Effect.annotateLogs({ error: detail, sqlState: String(cause?.code ?? "") }),
    Effect.zipRight(Effect.fail(new QueryUnavailable({ message })))
  )
}

const checkRange = (filter: ReadingFilter) =>
  filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to
    ? Effect.fail(
        new InvalidQuery({
          parameter: "to",
          value: formatEpochMicros(filter.to),
          message: `"to" must be later than "from" (${formatEpochMicros(filter.from)}); the range is [from, to)`
        })
      )
    : Effect.void

const toFilter = (params: { sensor_id?: ReadonlyArray<number> | undefined; from?: number | undefined; to?: number | undefined }): ReadingFilter => ({
  sensorIds: params.sensor_id,
  from: params.from,
  to: params.to
})

/** The handlers of the `sensors` group, over `SensorQueries`. */
export const SensorsHandlers = HttpApiBuilder.group(QueryApi, "sensors", (handlers) =>
  Effect.gen(function*() {
    const queries = yield* SensorQueries
    return handlers
      .handle("listSensors", ({ urlParams }) =>
        queries.listSensors(urlParams.page, urlParams.page_size).pipe(
          Effect.map((sensors) => ({ sensors, page: urlParams.page, page_size: urlParams.page_size })),
          Effect.catchTag("SqlError", unavailable)
        ))
      .handle("listReadings", ({ urlParams }) =>
        Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter)
          const rows = yield* queries.listReadings(filter, urlParams.page, urlParams.page_size)
          const data = rows.map((row) => ({ ...row.metrics, ts: formatEpochMicros(row.timeMicros), sensor_id: row.sensorId }))
          return { data, page: urlParams.page, page_size: urlParams.page_size }
        }).pipe(Effect.catchTag("SqlError", unavailable)))
      .handle("averages", ({ urlParams }) =>
        Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter)
          const rows = yield* queries.averages(filter)
          const data = rows.map((row) => ({ period: formatEpochMicros(row.periodMicros), avg_temp: row.avgTemp, avg_cpu: row.avgCpu }))
          return { data }
        }).pipe(Effect.catchTag("SqlError", unavailable)))
      .handle("averagesAndLatest", ({ urlParams }) =>
        Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter)
          const rows = yield* queries.averages(filter)
          const data = rows.map((row) => ({
            period: formatEpochMicros(row.periodMicros),
            avg_temp: row.avgTemp,
            avg_cpu: row.avgCpu,
            last_temp: row.lastTemp
          }))
          return { data }
        }).pipe(Effect.catchTag("SqlError", unavailable)))
      .handle("aggregates", ({ urlParams }) =>
        Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter)
          const bucketMicros = urlParams.bucket * 1e6
          if (filter.from !== undefined && filter.to !== undefined) {
            const buckets = Math.ceil((filter.to - filter.from) / bucketMicros)
            if (buckets > maxBuckets) {
              const fitting = Math.ceil((filter.to - filter.from) / 1e6 / maxBuckets)
              return yield* new InvalidQuery({
                parameter: "bucket",
                value: `${urlParams.bucket}s`,
                message: `the range contains ${buckets} buckets of ${urlParams.bucket}s, more than the maximum of ${maxBuckets}; use a bucket of at least ${fitting}s`
              })
            }
          }
          const rows = yield* queries.aggregate({
            filter,
            metrics: urlParams.metric,
            fn: urlParams.fn,
            bucketSeconds: urlParams.bucket,
            // One more than returned, to tell whether the series goes on past the maximum.
            maxBuckets: maxBuckets + 1
          })
          const buckets = new Map<number, Record<string, number | null>>()
          for (const row of rows) {
            let values = buckets.get(row.periodMicros)
            if (values === undefined) {
              values = Object.fromEntries(urlParams.metric.map((metric) => [metric, null]))
              buckets.set(row.periodMicros, values)
            }
            values[row.metric] = row.value
          }
          const truncated = buckets.size > maxBuckets
          const data = [...buckets]
            .slice(0, maxBuckets)
            .map(([period, values]) => ({ period: formatEpochMicros(period), values }))
          return { bucket_seconds: urlParams.bucket, fn: urlParams.fn, truncated, data }
        }).pipe(Effect.catchTag("SqlError", unavailable)))
  }))
