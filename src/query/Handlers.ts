import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { runAggregate } from "./AggregateRequest.ts"
import { AggregateSeries, maxBuckets, QueryApi } from "./Api.ts"
import { checkRange, encodedJson, withDatabaseErrors } from "./HandlerSupport.ts"
import { ReadOnlyTransaction } from "./ReadOnlyTransaction.ts"
import { type ReadingFilter, SensorQueries } from "./SensorQueries.ts"

const toFilter = (params: { sensor_id?: ReadonlyArray<number> | undefined; from?: number | undefined; to?: number | undefined }): ReadingFilter => ({
  sensorIds: params.sensor_id,
  from: params.from,
  to: params.to
})

/** The handlers of the `sensors` group: the original four operations and bucketed aggregates. */
export const SensorsHandlers = HttpApiBuilder.group(QueryApi, "sensors", (handlers) =>
  Effect.gen(function*() {
    const queries = yield* SensorQueries
    const transaction = yield* ReadOnlyTransaction
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => withDatabaseErrors(transaction.run(effect))
    return handlers
      .handle("listSensors", ({ urlParams }) =>
        run(queries.listSensors(urlParams.page, urlParams.page_size)).pipe(
          Effect.map((sensors) => ({ sensors, page: urlParams.page, page_size: urlParams.page_size }))
        ))
      .handle("listReadings", ({ urlParams }) =>
        run(Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter.from, filter.to)
          const rows = yield* queries.listReadings(filter, urlParams.page, urlParams.page_size)
          const data = rows.map((row) => ({ ...row.metrics, ts: formatEpochMicros(row.timeMicros), sensor_id: row.sensorId }))
          return { data, page: urlParams.page, page_size: urlParams.page_size }
        })))
      .handle("averages", ({ urlParams }) =>
        run(Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter.from, filter.to)
          const rows = yield* queries.averages(filter)
          const data = rows.map((row) => ({ period: formatEpochMicros(row.periodMicros), avg_temp: row.avgTemp, avg_cpu: row.avgCpu }))
          return { data }
        })))
      .handle("averagesAndLatest", ({ urlParams }) =>
        run(Effect.gen(function*() {
          const filter = toFilter(urlParams)
          yield* checkRange(filter.from, filter.to)
          const rows = yield* queries.averages(filter)
          const data = rows.map((row) => ({
            period: formatEpochMicros(row.periodMicros),
            avg_temp: row.avgTemp,
            avg_cpu: row.avgCpu,
            last_temp: row.lastTemp
          }))
          return { data }
        })))
      .handle("aggregates", ({ urlParams }) =>
        run(runAggregate(urlParams, maxBuckets)).pipe(Effect.map((series) => encodedJson(AggregateSeries, series))))
  }))
