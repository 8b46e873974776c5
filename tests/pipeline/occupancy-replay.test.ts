import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"
import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import {
  awaitCommittedRecords,
  awaitRows,
  pipelineLayer,
  queryClient,
  TestDatabase,
  testBrokers,
  uniqueNames
} from "../support/TestPipeline.ts"

// The UCI Occupancy Detection data set (one office room, February 2015, a reading about every
// minute): OCCUPANCY_DATA_DIR, or the data folder that CI lays beside the repository.
const dataDir = process.env.OCCUPANCY_DATA_DIR ?? join(import.meta.dirname, "../../../shared/data/occupancy-uci")
const files = ["datatest.txt", "datatraining.txt", "datatest2.txt"]
const present = existsSync(join(dataDir, files[0]!))
const columns = { Temperature: "temperature", Humidity: "humidity", Light: "light", CO2: "co2", HumidityRatio: "humidity_ratio", Occupancy: "occupancy" }
const sensorId = 100
const readingsPerMessage = 100

/** Rows of one file, read here without the product's CSV reader: the timestamps are UTC+1 wall-clock time. */
const readRows = (file: string) => {
  const [header, ...lines] = readFileSync(join(dataDir, file), "utf8").trim().split(/\r?\n/)
  const names = header!.split(",").map((name) => name.replaceAll(`"`, ""))
  return lines.map((line) => {
    const fields = line.split(",").map((field) => field.replaceAll(`"`, "")).slice(1)
    const record = Object.fromEntries(names.map((name, index) => [name, fields[index]!]))
    const seconds = Date.parse(`${record.date!.replace(" ", "T")}+01:00`) / 1000
    return { seconds, temperature: Number(record.Temperature), co2: Number(record.CO2) }
  })
}

/** 30-minute bucket averages, computed from the CSV rows. */
const bucketAverages = (rows: ReadonlyArray<{ seconds: number; temperature: number; co2: number }>) => {
  const buckets = new Map<number, { temperature: number; co2: number; count: number }>()
  for (const row of rows) {
    const start = Math.floor(row.seconds / 1800) * 1800
    const bucket = buckets.get(start) ?? { temperature: 0, co2: 0, count: 0 }
    bucket.temperature += row.temperature
    bucket.co2 += row.co2
    bucket.count += 1
    buckets.set(start, bucket)
  }
  return [...buckets]
    .sort(([a], [b]) => a - b)
    .map(([start, bucket]) => ({
      period: new Date(start * 1000).toISOString(),
      temperature: bucket.temperature / bucket.count,
      co2: bucket.co2 / bucket.count
    }))
}

const runReplay = (file: string, topic: string) =>
  Effect.promise(() =>
    promisify(execFile)(
      process.execPath,
      [
        "bin/sensor-logger.js",
        "replay",
        join(dataDir, file),
        "--sensor-id", String(sensorId),
        "--time-format", "%Y-%m-%d %H:%M:%S",
        "--time-zone", "+01:00",
        "--topic", topic,
        "--per-message", String(readingsPerMessage),
        ...Object.entries(columns).flatMap(([csv, metric]) => ["--column", `${csv}=${metric}`])
      ],
      { cwd: join(import.meta.dirname, "../.."), env: { ...process.env, KAFKA_BROKERS: testBrokers().join(","), LOG_LEVEL: "warning" } }
    )
  )

describe.skipIf(!present)("UCI occupancy data set replayed through the pipeline", () => {
  it.scopedLive("stores every reading once and serves the CSV's 30-minute averages", () => {
    const names = uniqueNames("occupancy")
    const fileRows = files.map(readRows)
    const rows = fileRows.flat()
    const messageCount = fileRows.reduce((sum, file) => sum + Math.ceil(file.length / readingsPerMessage), 0)
    const expected = bucketAverages(rows)
    const metricCount = Object.keys(columns).length
    return Effect.gen(function*() {
      for (const file of files) yield* runReplay(file, names.readingsTopic)

      yield* Effect.gen(function*() {
        yield* awaitRows(rows.length * metricCount, "180 seconds")
        // The time spent in batches (decode, write, commit), which leaves out the database's
        // start, the migrations and the group join.
        const totals = yield* awaitCommittedRecords(messageCount)
        expect(totals.readings).toBe(rows.length)
        const seconds = totals.busyMillis / 1000
        console.log(
          `occupancy replay: ${totals.readings} readings (${totals.rows} rows) in ${totals.batches} batches, ` +
            `handled in ${seconds.toFixed(2)} s: ${Math.round(totals.readings / seconds)} readings/s`
        )
        const client = yield* queryClient

        const original = yield* client.sensors.averages({ urlParams: { sensor_id: [sensorId as never] } })
        expect(original.data.map((bucket) => bucket.period)).toEqual(expected.map((bucket) => bucket.period))
        original.data.forEach((bucket, index) => {
          expect(bucket.avg_temp).toBeCloseTo(expected[index]!.temperature, 9)
          expect(bucket.avg_cpu).toBeNull()
        })

        const co2 = yield* client.sensors.aggregates({
          urlParams: { metric: ["co2" as never], fn: "avg", bucket: 1800, sensor_id: [sensorId as never] }
        })
        expect(co2.bucket_seconds).toBe(1800)
        expect(co2.data).toHaveLength(expected.length)
        co2.data.forEach((bucket, index) => {
          expect(bucket.period).toBe(expected[index]!.period)
          expect(bucket.values.co2).toBeCloseTo(expected[index]!.co2, 9)
        })

        const counts = yield* client.sensors.aggregates({
          urlParams: { metric: ["temperature" as never], fn: "count", bucket: 86_400 * 30 }
        })
        const stored = counts.data.reduce((sum, bucket) => sum + (bucket.values.temperature ?? 0), 0)
        expect(stored).toBe(rows.length)
      }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
    })
  }, 300_000)
})
