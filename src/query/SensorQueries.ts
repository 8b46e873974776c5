import { SqlClient, type Statement } from "@effect/sql"
import { Effect } from "effect"
import type { SensorId } from "../domain/SensorId.ts"
import { MetricDirectory } from "./MetricDirectory.ts"

/** The filters shared by the reading queries. `from` is inclusive and `to` exclusive, in microseconds. */
export interface ReadingFilter {
  readonly sensorIds?: ReadonlyArray<number> | undefined
  readonly from?: number | undefined
  readonly to?: number | undefined
}

/** One reading pivoted back from its metric rows. */
export interface ReadingRow {
  readonly timeMicros: number
  readonly sensorId: number
  readonly metrics: Record<string, number>
}

/** One bucket of the original averages. */
export interface AverageRow {
  readonly periodMicros: number
  readonly avgTemp: number | null
  readonly avgCpu: number | null
  readonly lastTemp: number | null
}

/**
 * Read-only SQL of the original read service's operations over `sensors` and `sensor_data`.
 *
 * Metric names are turned into ids before a query rather than joined in it (`MetricDirectory`).
 * On compressed data the join made bucketed averages about 3 times and latest values about 40
 * times slower (bench/storage-layout.ts).
 */
export class SensorQueries extends Effect.Service<SensorQueries>()("sensor-logger/SensorQueries", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { idsOf, namesOf } = yield* MetricDirectory

    const instant = (micros: number) => sql`timestamptz 'epoch' + ${micros}::int8 * interval '1 microsecond'`

    const readingConditions = (filter: ReadingFilter): Array<Statement.Fragment> => {
      const conditions: Array<Statement.Fragment> = []
      if (filter.sensorIds !== undefined) conditions.push(sql`d.sensor_id = any(${[...filter.sensorIds]}::int8[])`)
      if (filter.from !== undefined) conditions.push(sql`d.time >= ${instant(filter.from)}`)
      if (filter.to !== undefined) conditions.push(sql`d.time < ${instant(filter.to)}`)
      return conditions
    }

    const listSensors = Effect.fn("SensorQueries.listSensors")(function*(page: number, pageSize: number) {
      return yield* sql<{ id: SensorId; type: string; location: string }>`
        select id, type, location from sensors order by id limit ${pageSize} offset ${(page - 1) * pageSize}`
    })

    const listReadings = Effect.fn("SensorQueries.listReadings")(function*(
      filter: ReadingFilter,
      page: number,
      pageSize: number
    ) {
      const rows = yield* sql<{ time_us: number; sensor_id: number; metrics: Record<string, number> }>`
        select (extract(epoch from d.time) * 1000000)::int8 as time_us, d.sensor_id,
               jsonb_object_agg(d.metric_id, d.value) as metrics
        from sensor_data d
        where ${sql.and(readingConditions(filter))}
        group by d.time, d.sensor_id
        order by d.time, d.sensor_id
        limit ${pageSize} offset ${(page - 1) * pageSize}`
      const nameOf = yield* namesOf(new Set(rows.flatMap((row) => Object.keys(row.metrics).map(Number))))
      return rows.map((row): ReadingRow => {
        const metrics: Record<string, number> = {}
        for (const [id, value] of Object.entries(row.metrics)) metrics[nameOf(Number(id))] = value
        return { timeMicros: row.time_us, sensorId: row.sensor_id, metrics }
      })
    })

    const averages = Effect.fn("SensorQueries.averages")(function*(filter: ReadingFilter) {
      // -1 matches no row, so a metric that was never written averages to null.
      const [temperature = -1] = yield* idsOf(["temperature"])
      const [cpu = -1] = yield* idsOf(["cpu"])
      const rows = yield* sql<{ period_us: number; avg_temp: number | null; avg_cpu: number | null; last_temp: number | null }>`
        select (extract(epoch from time_bucket(interval '30 minutes', d.time)) * 1000000)::int8 as period_us,
               sum(d.value) filter (where d.metric_id = ${temperature}) / count(d.value) filter (where d.metric_id = ${temperature}) as avg_temp,
               sum(d.value) filter (where d.metric_id = ${cpu}) / count(d.value) filter (where d.metric_id = ${cpu}) as avg_cpu,
               last(d.value, d.time) filter (where d.metric_id = ${temperature}) as last_temp
        from sensor_data d
        where d.metric_id = any(${[temperature, cpu]}::int4[]) and ${sql.and(readingConditions(filter))}
        group by 1
        order by 1`
      return rows.map((row): AverageRow => ({
        periodMicros: row.period_us,
        avgTemp: row.avg_temp,
        avgCpu: row.avg_cpu,
        lastTemp: row.last_temp
      }))
    })

    return { listSensors, listReadings, averages } as const
  })
}) {}
