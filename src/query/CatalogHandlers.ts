import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { LatestPage, QueryApi } from "./Api.ts"
import { CatalogQueries, type SensorSummaryRow } from "./CatalogQueries.ts"
import { encodedJson, requireKnownSensors, withDatabaseErrors } from "./HandlerSupport.ts"
import { MetricDirectory } from "./MetricDirectory.ts"
import { SensorNotFound } from "./QueryErrors.ts"
import { ReadOnlyTransaction } from "./ReadOnlyTransaction.ts"

/** The handlers of the `catalog` group: sensor summaries and latest values. */
export const CatalogHandlers = HttpApiBuilder.group(QueryApi, "catalog", (handlers) =>
  Effect.gen(function*() {
    const queries = yield* CatalogQueries
    const directory = yield* MetricDirectory
    const transaction = yield* ReadOnlyTransaction
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => withDatabaseErrors(transaction.run(effect))

    const toView = (row: SensorSummaryRow) =>
      Effect.gen(function*() {
        const nameOf = yield* directory.namesOf(row.metricIds)
        const metrics = row.metricIds.map(nameOf)
        return {
          id: row.id,
          type: row.type,
          location: row.location,
          metrics: metrics.sort(),
          first_reading: row.firstMicros === null ? null : formatEpochMicros(row.firstMicros),
          last_reading: row.lastMicros === null ? null : formatEpochMicros(row.lastMicros)
        }
      })

    return handlers
      .handle("sensorSummaries", ({ urlParams }) =>
        run(Effect.gen(function*() {
          const rows = yield* queries.summaries({
            type: urlParams.type,
            location: urlParams.location,
            page: urlParams.page,
            pageSize: urlParams.page_size
          })
          const sensors = yield* Effect.forEach(rows, toView)
          return { sensors, page: urlParams.page, page_size: urlParams.page_size }
        })))
      .handle("getSensor", ({ path }) =>
        run(Effect.gen(function*() {
          const [row] = yield* queries.summaries({ ids: [path.id], page: 1, pageSize: 1 })
          if (row === undefined) {
            return yield* new SensorNotFound({
              sensor_ids: [path.id],
              message: `no sensor with id ${path.id}: it has neither metadata nor readings; GET /v1/sensor-summaries lists the known sensors`
            })
          }
          return yield* toView(row)
        })))
      .handle("latest", ({ urlParams }) =>
        run(Effect.gen(function*() {
          yield* requireKnownSensors(urlParams.sensor_id)
          const metricIds = urlParams.metric === undefined ? undefined : yield* directory.requireIds(urlParams.metric)
          const rows = yield* queries.latest({
            sensorIds: urlParams.sensor_id,
            metricIds,
            page: urlParams.page,
            pageSize: urlParams.page_size
          })
          const nameOf = yield* directory.namesOf(new Set(rows.map((row) => row.metricId)))
          const bySensor = new Map<number, Record<string, { ts: string; value: number }>>()
          for (const row of rows) {
            let metrics = bySensor.get(row.sensorId)
            if (metrics === undefined) bySensor.set(row.sensorId, metrics = {})
            metrics[nameOf(row.metricId)] = { ts: formatEpochMicros(row.timeMicros), value: row.value }
          }
          const data = [...bySensor].map(([sensor_id, metrics]) => ({ sensor_id, metrics }))
          return encodedJson(LatestPage, { data, page: urlParams.page, page_size: urlParams.page_size })
        })))
  }))
