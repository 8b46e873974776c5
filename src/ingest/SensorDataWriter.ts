import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, Layer } from "effect"
import type { Reading } from "../domain/Reading.ts"
import type { Sensor } from "../domain/Sensor.ts"

/** The rows of a batch after in-batch duplicates were removed, as column arrays for `unnest`. */
interface SensorDataColumns {
  readonly times: Array<number>
  readonly sensorIds: Array<number>
  readonly metricIds: Array<number>
  readonly values: Array<number>
}

/**
 * Writes decoded readings and sensors into TimescaleDB.
 *
 * Rows go in as four array parameters of one `insert ... select from unnest(...)`, so a batch of
 * any size is one statement with four bind parameters, far from PostgreSQL's limit of 65,535.
 * A reading already stored (same sensor, metric and instant) is overwritten by the newer value.
 */
export class SensorDataWriter extends Effect.Service<SensorDataWriter>()("sensor-logger/SensorDataWriter", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const metricIds = new Map<string, number>()

    /** Registers unknown metric names; outside the batch transaction, so a rollback never leaves the cache pointing at missing rows. */
    const resolveMetricIds = Effect.fn("SensorDataWriter.resolveMetricIds")(function*(names: ReadonlyArray<string>) {
      const unknown = names.filter((name) => !metricIds.has(name))
      if (unknown.length === 0) return
      // Only names not yet stored reach the insert: `on conflict do nothing` alone would still
      // draw a sequence value for every existing name.
      yield* sql`
        insert into metrics (name)
        select name from unnest(${unknown}::text[]) as u(name)
        where not exists (select 1 from metrics m where m.name = u.name)
        on conflict (name) do nothing`
      const rows = yield* sql<{ id: number; name: string }>`
        select id, name from metrics where name = any(${unknown}::text[])`
      for (const row of rows) metricIds.set(row.name, row.id)
    })

    const toColumns = (readings: ReadonlyArray<Reading>): SensorDataColumns => {
      // A device retry may repeat a key inside one batch; the later reading wins, and one
      // statement must not touch a row twice ("ON CONFLICT DO UPDATE cannot affect row a second time").
      const rowIndex = new Map<string, number>()
      const columns: SensorDataColumns = { times: [], sensorIds: [], metricIds: [], values: [] }
      for (const reading of readings) {
        for (const name in reading.metrics) {
          const metricId = metricIds.get(name)!
          const value = reading.metrics[name as keyof typeof reading.metrics]!
          const key = `${reading.sensorId}/${metricId}/${reading.time}`
          const existing = rowIndex.get(key)
          if (existing !== undefined) {
            columns.values[existing] = value
            continue
          }
          rowIndex.set(key, columns.times.length)
          columns.times.push(reading.time)
          columns.sensorIds.push(reading.sensorId)
          columns.metricIds.push(metricId)
          columns.values.push(value)
        }
      }
      return columns
    }

    /** Prepares `readings` for `writeInTransaction`: resolves metric names, then builds the rows. */
    const prepare = Effect.fn("SensorDataWriter.prepare")(function*(readings: ReadonlyArray<Reading>) {
      const names = new Set<string>()
      for (const reading of readings) for (const name in reading.metrics) names.add(name)
      yield* resolveMetricIds([...names])
      return toColumns(readings)
    })

    const insertRows = (columns: SensorDataColumns): Effect.Effect<void, SqlError.SqlError> =>
      columns.times.length === 0 ? Effect.void : sql`
        insert into sensor_data (time, sensor_id, metric_id, value)
        select timestamptz 'epoch' + t * interval '1 microsecond', s, m, v
        from unnest(${columns.times}::int8[], ${columns.sensorIds}::int8[], ${columns.metricIds}::int4[], ${columns.values}::float8[]) as u(t, s, m, v)
        on conflict (sensor_id, metric_id, time) do update set value = excluded.value`

    const upsertSensors = (sensors: ReadonlyArray<Sensor>): Effect.Effect<void, SqlError.SqlError> => {
      if (sensors.length === 0) return Effect.void
      const latest = new Map<number, Sensor>()
      for (const sensor of sensors) latest.set(sensor.id, sensor)
      const rows = [...latest.values()]
      return sql`
        insert into sensors (id, type, location)
        select * from unnest(${rows.map((s) => s.id)}::int8[], ${rows.map((s) => s.type)}::text[], ${rows.map((s) => s.location)}::text[])
        on conflict (id) do update set type = excluded.type, location = excluded.location, updated_at = now()`
    }

    /**
     * Stores readings and sensors in one transaction and returns the number of metric values
     * written. Sensors listed more than once keep their last version.
     */
    const write = Effect.fn("SensorDataWriter.write")(function*(
      readings: ReadonlyArray<Reading>,
      sensors: ReadonlyArray<Sensor>
    ) {
      const columns = yield* prepare(readings)
      yield* Effect.annotateCurrentSpan({ readings: readings.length, rows: columns.times.length, sensors: sensors.length })
      yield* sql.withTransaction(Effect.zipRight(insertRows(columns), upsertSensors(sensors)))
      return columns.times.length
    })

    return { write } as const
  })
}) {
  /** The writer on top of whatever `SqlClient` the caller provides. */
  static readonly layer: Layer.Layer<SensorDataWriter, never, SqlClient.SqlClient> = SensorDataWriter.Default
}
