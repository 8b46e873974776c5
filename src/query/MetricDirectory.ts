import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { MetricNotFound } from "./QueryErrors.ts"

/**
 * Metric names and ids, cached. Queries turn names into ids before they run rather than join
 * `metrics`: with the join, TimescaleDB can neither filter compressed chunks by `metric_id` nor
 * use its skip scan (bench/storage-layout.ts).
 */
export class MetricDirectory extends Effect.Service<MetricDirectory>()("sensor-logger/MetricDirectory", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // Metric names are never renamed or removed, so a cached id stays valid. An unknown name
    // triggers one reload, because the ingest job may have registered it since.
    const metricIds = new Map<string, number>()
    const metricNames = new Map<number, string>()

    const loadMetrics = sql<{ id: number; name: string }>`select id, name from metrics`.pipe(
      Effect.tap((rows) => {
        for (const row of rows) {
          metricIds.set(row.name, row.id)
          metricNames.set(row.id, row.name)
        }
      })
    )

    /** Ids of the metrics of `names` that exist; unknown names are left out. */
    const idsOf = (names: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        if (names.some((name) => !metricIds.has(name))) yield* loadMetrics
        return names.flatMap((name) => {
          const id = metricIds.get(name)
          return id === undefined ? [] : [id]
        })
      })

    /**
     * Returns the ids of the metrics of `names`, in order, or fails with `MetricNotFound` naming
     * every unknown name, so that a misspelt metric is not mistaken for one without readings.
     */
    const requireIds = (names: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const ids = yield* idsOf(names)
        if (ids.length === names.length) return ids
        const unknown = [...new Set(names.filter((name) => !metricIds.has(name)))]
        return yield* new MetricNotFound({
          metrics: unknown,
          message: `no metric named ${unknown.map((name) => JSON.stringify(name)).join(", ")}: no reading has carried that name; ` +
            "GET /v1/sensor-summaries lists the metrics of each sensor"
        })
      })

    /**
     * Returns a lookup of the names of `ids`, reloading the metrics once when one of them is not
     * cached. Handlers resolve the ids of a whole response with it, rather than one effect a row.
     */
    const namesOf = (ids: Iterable<number>) =>
      Effect.gen(function*() {
        for (const id of ids) {
          if (metricNames.has(id)) continue
          yield* loadMetrics
          break
        }
        return (id: number): string => metricNames.get(id) ?? `metric_${id}`
      })

    return { idsOf, requireIds, namesOf } as const
  })
}) {}
