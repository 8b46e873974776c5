import { SqlClient, type Statement } from "@effect/sql"
import { Effect } from "effect"
import type { ReadingKey } from "./Cursor.ts"

/** The selection of raw readings: every filter is optional, `from` inclusive and `to` exclusive (microseconds). */
export interface RawSelection {
  readonly sensorIds?: ReadonlyArray<number> | undefined
  /** Metric ids; an empty array matches nothing, `undefined` every metric. */
  readonly metricIds?: ReadonlyArray<number> | undefined
  readonly from?: number | undefined
  readonly to?: number | undefined
}

/** One stored value: a row of `sensor_data`. */
export interface PointRow {
  readonly timeMicros: number
  readonly sensorId: number
  readonly metricId: number
  readonly value: number
}

/**
 * Keyset pages of raw readings, ordered by time, sensor id and metric id (all ascending or all
 * descending). That order is total, because the three make the primary key, so readings that
 * share a timestamp are neither skipped nor repeated at a page boundary. Times travel as integer
 * microseconds, so instants that differ by one microsecond stay apart.
 */
export class ReadingQueries extends Effect.Service<ReadingQueries>()("sensor-logger/ReadingQueries", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const instant = (micros: number) => sql`timestamptz 'epoch' + ${micros}::int8 * interval '1 microsecond'`

    const page = Effect.fn("ReadingQueries.page")(function*(options: {
      readonly selection: RawSelection
      readonly order: "asc" | "desc"
      readonly limit: number
      readonly after?: ReadingKey | undefined
    }) {
      const { selection, after } = options
      if (selection.metricIds !== undefined && selection.metricIds.length === 0) return []
      const conditions: Array<Statement.Fragment> = []
      if (selection.sensorIds !== undefined) conditions.push(sql`d.sensor_id = any(${[...selection.sensorIds]}::int8[])`)
      if (selection.metricIds !== undefined) conditions.push(sql`d.metric_id = any(${[...selection.metricIds]}::int4[])`)
      if (selection.from !== undefined) conditions.push(sql`d.time >= ${instant(selection.from)}`)
      if (selection.to !== undefined) conditions.push(sql`d.time < ${instant(selection.to)}`)
      if (after !== undefined) {
        const key = sql`(${instant(after.timeMicros)}, ${after.sensorId}::int8, ${after.metricId}::int4)`
        conditions.push(options.order === "asc" ? sql`(d.time, d.sensor_id, d.metric_id) > ${key}` : sql`(d.time, d.sensor_id, d.metric_id) < ${key}`)
      }
      const direction = sql.literal(options.order)
      const rows = yield* sql<{ time_us: number; sensor_id: number; metric_id: number; value: number }>`
        select (extract(epoch from d.time) * 1000000)::int8 as time_us, d.sensor_id, d.metric_id, d.value
        from sensor_data d
        where ${sql.and(conditions)}
        order by d.time ${direction}, d.sensor_id ${direction}, d.metric_id ${direction}
        limit ${options.limit}`
      return rows.map((row): PointRow => ({
        timeMicros: row.time_us,
        sensorId: row.sensor_id,
        metricId: row.metric_id,
        value: row.value
      }))
    })

    return { page } as const
  })
}) {}
