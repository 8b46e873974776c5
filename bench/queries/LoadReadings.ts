/**
 * Loads the query benchmark's readings through the ingest job's own writer, so the read models
 * that the writer and the migrations maintain are filled as in production.
 */
import { Effect } from "effect"
import { runMigrations } from "../../src/ingest/Migrations.ts"
import { SensorDataWriter } from "../../src/ingest/SensorDataWriter.ts"
import { type Reading } from "../../src/domain/Reading.ts"
import { Sensor } from "../../src/domain/Sensor.ts"
import type { EpochMicros } from "../../src/domain/Timestamp.ts"
import type { SensorId } from "../../src/domain/SensorId.ts"
import type { MetricName } from "../../src/domain/MetricName.ts"

export interface QueryDataShape {
  readonly readings: number
  readonly sensors: number
  readonly days: number
  /** End of the data, Unix seconds; readings go back `days` from here. */
  readonly endSeconds: number
}

/** Seconds between two readings of one sensor, so that each sensor's readings span `days`. */
export const readingInterval = (shape: QueryDataShape) => (shape.days * 86_400 * shape.sensors) / shape.readings

export const startSeconds = (shape: QueryDataShape) => shape.endSeconds - shape.days * 86_400

/**
 * Writes `shape.readings` readings of temperature and cpu, sensor by sensor at each step:
 * temperature a sine wave around 22 degrees rounded to 0.1, cpu a sawtooth of whole percents.
 * Reports progress every 5 percent.
 */
export const loadReadings = (shape: QueryDataShape, onProgress: (written: number) => void) =>
  Effect.gen(function*() {
    yield* runMigrations
    const writer = yield* SensorDataWriter
    const writeOptions = { onConflict: "update", maxRowsPerStatement: 20_000 } as const
    const sensors = Array.from({ length: shape.sensors }, (_, index) =>
      new Sensor({ id: (index + 1) as SensorId, type: index % 2 === 0 ? "thermo" : "gateway", location: `hall-${index % 10}` }))
    yield* writer.write([], sensors, writeOptions)

    const interval = readingInterval(shape)
    const start = startSeconds(shape)
    const steps = Math.ceil(shape.readings / shape.sensors)
    const perWrite = 10_000
    let written = 0
    let reported = 0
    let pending: Array<Reading> = []
    for (let step = 0; step < steps && written + pending.length < shape.readings; step++) {
      const micros = Math.round((start + step * interval) * 1e6)
      for (let index = 0; index < shape.sensors && written + pending.length < shape.readings; index++) {
        const wave = Math.sin((step + index * 17) / 50)
        pending.push({
          time: micros as EpochMicros,
          sensorId: (index + 1) as SensorId,
          metrics: {
            ["temperature" as MetricName]: Math.round((22 + 6 * wave) * 10) / 10,
            ["cpu" as MetricName]: (step * 7 + index) % 101
          }
        })
        if (pending.length === perWrite) {
          yield* writer.write(pending, [], writeOptions)
          written += pending.length
          pending = []
          if (written - reported >= shape.readings / 20) {
            reported = written
            onProgress(written)
          }
        }
      }
    }
    if (pending.length > 0) yield* writer.write(pending, [], writeOptions)
    written += pending.length
    if (written !== reported) onProgress(written)
    return written
  })
