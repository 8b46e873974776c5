import { SqlClient, type SqlError } from "@effect/sql"
import { Effect, Layer } from "effect"
import type { Reading } from "../domain/Reading.ts"
import type { Sensor } from "../domain/Sensor.ts"
import type { OnConflict } from "./IngestConfig.ts"
import { arrayLiteral, seriesKey } from "./RowEncoding.ts"

/** The rows of a batch after in-batch duplicates were removed, as column arrays for `unnest`. */
interface SensorDataColumns {
  readonly times: Array<number>
  readonly sensorIds: Array<number>
  readonly metricIds: Array<number>
  readonly values: Array<number>
}

/** Conflict rule and statement size of `SensorDataWriter.write`. */
export interface WriteOptions {
  readonly onConflict: OnConflict
  /** Most rows of one insert statement; a larger write takes several, all in its transaction. */
  readonly maxRowsPerStatement: number
}

/**
 * Sensor ids that are known to have a row in `sensors`, so that a write registers only new ones.
 * Past this many ids the cache starts over, which costs one `on conflict do nothing` per id.
 */
const maxKnownSensorIds = 1_000_000

/**
 * Writes decoded readings and sensors into TimescaleDB.
 *
 * Rows go in as four array parameters of `insert ... select from unnest(...)`, so a statement of
 * any size has four bind parameters, far from PostgreSQL's limit of 65,535. A reading whose key
 * (sensor, metric, instant) is already stored overwrites it or is ignored (`WriteOptions.onConflict`).
 *
 * A sensor id that readings use is registered in `sensors` with an empty type and location
 * unless it has a row already, so `GET /v1/sensors` lists every sensor that reports, announced
 * on `logger.sensor.instance` or not. An announcement later fills in its type and location.
 */
export class SensorDataWriter extends Effect.Service<SensorDataWriter>()("sensor-logger/SensorDataWriter", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const metricIds = new Map<string, number>()
    const knownSensorIds = new Set<number>()

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

    /**
     * Builds the rows of `readings`, one per key. A key may appear twice in one write (a device
     * retry, or two fetches combined), and one statement must not touch a row twice ("ON CONFLICT
     * DO UPDATE cannot affect row a second time"). So the reading that `onConflict` keeps wins,
     * the last one for `update` and the first one for `ignore`.
     *
     * Rows are indexed by series (sensor and metric) and then by instant, with numbers as keys.
     * A string key per row took three times as long and was the largest cost in the ingest job's
     * CPU profile.
     */
    const toColumns = (readings: ReadonlyArray<Reading>, onConflict: OnConflict): SensorDataColumns => {
      const rowIndex = new Map<number | string, Map<number, number>>()
      const columns: SensorDataColumns = { times: [], sensorIds: [], metricIds: [], values: [] }
      for (const reading of readings) {
        for (const name in reading.metrics) {
          const metricId = metricIds.get(name)!
          const value = reading.metrics[name as keyof typeof reading.metrics]!
          const series = seriesKey(reading.sensorId, metricId)
          let byTime = rowIndex.get(series)
          if (byTime === undefined) rowIndex.set(series, byTime = new Map())
          const existing = byTime.get(reading.time)
          if (existing !== undefined) {
            if (onConflict === "update") columns.values[existing] = value
            continue
          }
          byTime.set(reading.time, columns.times.length)
          columns.times.push(reading.time)
          columns.sensorIds.push(reading.sensorId)
          columns.metricIds.push(metricId)
          columns.values.push(value)
        }
      }
      return columns
    }

    /** Prepares `readings` for the transaction: resolves metric names, then builds the rows. */
    const prepare = Effect.fn("SensorDataWriter.prepare")(function*(readings: ReadonlyArray<Reading>, onConflict: OnConflict) {
      const names = new Set<string>()
      for (const reading of readings) for (const name in reading.metrics) names.add(name)
      yield* resolveMetricIds([...names])
      return toColumns(readings, onConflict)
    })

    const insertRows = (columns: SensorDataColumns, onConflict: OnConflict): Effect.Effect<void, SqlError.SqlError> => {
      if (columns.times.length === 0) return Effect.void
      const conflict = onConflict === "update"
        ? sql`on conflict (sensor_id, metric_id, time) do update set value = excluded.value`
        : sql`on conflict (sensor_id, metric_id, time) do nothing`
      return sql`
        insert into sensor_data (time, sensor_id, metric_id, value)
        select timestamptz 'epoch' + t * interval '1 microsecond', s, m, v
        from unnest(${arrayLiteral(columns.times)}::int8[], ${arrayLiteral(columns.sensorIds)}::int8[], ${
        arrayLiteral(columns.metricIds)
      }::int4[], ${arrayLiteral(columns.values)}::float8[]) as u(t, s, m, v)
        ${conflict}`.pipe(Effect.asVoid)
    }

    /** Inserts the rows in statements of at most `maxRows` rows each. */
    const insertAllRows = (columns: SensorDataColumns, options: WriteOptions): Effect.Effect<void, SqlError.SqlError> =>
      Effect.gen(function*() {
        const size = options.maxRowsPerStatement
        for (let start = 0; start < columns.times.length; start += size) {
          yield* insertRows({
            times: columns.times.slice(start, start + size),
            sensorIds: columns.sensorIds.slice(start, start + size),
            metricIds: columns.metricIds.slice(start, start + size),
            values: columns.values.slice(start, start + size)
          }, options.onConflict)
        }
      })

    /** Returns the ids of `readings` without a known row in `sensors`, ascending (a fixed lock order between transactions). */
    const unregisteredSensorIds = (readings: ReadonlyArray<Reading>): Array<number> => {
      const ids = new Set<number>()
      for (const reading of readings) if (!knownSensorIds.has(reading.sensorId)) ids.add(reading.sensorId)
      return [...ids].sort((a, b) => a - b)
    }

    const registerSensors = (ids: ReadonlyArray<number>): Effect.Effect<void, SqlError.SqlError> =>
      ids.length === 0 ? Effect.void : sql`
        insert into sensors (id) select unnest(${ids}::int8[])
        on conflict (id) do nothing`.pipe(Effect.asVoid)

    const upsertSensors = (sensors: ReadonlyArray<Sensor>): Effect.Effect<void, SqlError.SqlError> => {
      if (sensors.length === 0) return Effect.void
      const latest = new Map<number, Sensor>()
      for (const sensor of sensors) latest.set(sensor.id, sensor)
      const rows = [...latest.values()].sort((a, b) => a.id - b.id)
      return sql`
        insert into sensors (id, type, location)
        select * from unnest(${rows.map((s) => s.id)}::int8[], ${rows.map((s) => s.type)}::text[], ${rows.map((s) => s.location)}::text[])
        on conflict (id) do update set type = excluded.type, location = excluded.location, updated_at = now()`.pipe(Effect.asVoid)
    }

    const rememberSensorIds = (ids: Iterable<number>) => {
      if (knownSensorIds.size > maxKnownSensorIds) knownSensorIds.clear()
      for (const id of ids) knownSensorIds.add(id)
    }

    /**
     * Stores readings and sensors in one transaction and returns the number of rows sent to
     * `sensor_data` (with `ignore`, rows already stored are among them). Sensors listed more than
     * once keep their last version. Sensor metadata always overwrites, whatever `onConflict` is.
     */
    const write = Effect.fn("SensorDataWriter.write")(function*(
      readings: ReadonlyArray<Reading>,
      sensors: ReadonlyArray<Sensor>,
      options: WriteOptions
    ) {
      const columns = yield* prepare(readings, options.onConflict)
      const newSensorIds = unregisteredSensorIds(readings)
      yield* Effect.annotateCurrentSpan({ readings: readings.length, rows: columns.times.length, sensors: sensors.length })
      yield* sql.withTransaction(
        Effect.all([registerSensors(newSensorIds), insertAllRows(columns, options), upsertSensors(sensors)], { discard: true })
      )
      rememberSensorIds(newSensorIds)
      rememberSensorIds(sensors.map((sensor) => sensor.id))
      return columns.times.length
    })

    return { write } as const
  })
}) {
  /** The writer on top of whatever `SqlClient` the caller provides. */
  static readonly layer: Layer.Layer<SensorDataWriter, never, SqlClient.SqlClient> = SensorDataWriter.Default
}
