import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { describe, expect } from "vitest"
import { deadLetterHeaders } from "../../src/ingest/DeadLetter.ts"
import {
  awaitCommittedRecords,
  awaitRows,
  consumeAll,
  getRaw,
  pipelineLayer,
  pollUntil,
  produce,
  queryClient,
  TestDatabase,
  uniqueNames
} from "../support/TestPipeline.ts"

const originalExample = `[{"ts": 1646409307, "sensor_id": 1, "temperature":30, "cpu":20}]`

describe("pipeline on the real broker and embedded TimescaleDB", () => {
  it.scopedLive("returns the original example message through the query API", () => {
    const names = uniqueNames("example")
    return Effect.gen(function*() {
      yield* produce(names.readingsTopic, [{ key: "1", value: originalExample }])
      yield* awaitRows(2)
      const client = yield* queryClient

      const page = yield* client.sensors.listReadings({ urlParams: { page: 1, page_size: 100 } })
      expect(page.data).toEqual([{ ts: "2022-03-04T15:55:07.000Z", sensor_id: 1, temperature: 30, cpu: 20 }])

      const averages = yield* client.sensors.averages({ urlParams: {} })
      expect(averages.data).toEqual([{ period: "2022-03-04T15:30:00.000Z", avg_temp: 30, avg_cpu: 20 }])

      const latest = yield* client.sensors.averagesAndLatest({ urlParams: {} })
      expect(latest.data).toEqual([{ period: "2022-03-04T15:30:00.000Z", avg_temp: 30, avg_cpu: 20, last_temp: 30 }])

      const repeated = yield* getRaw("/v1/sensor-data?sensor_id=2&sensor_id=1&from=1646409307000&to=1646409308000")
      expect(repeated.status).toBe(200)
      expect(repeated.body.data).toEqual([{ ts: "2022-03-04T15:55:07.000Z", sensor_id: 1, temperature: 30, cpu: 20 }])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("lists a sensor produced to the sensors topic", () => {
    const names = uniqueNames("sensor")
    return Effect.gen(function*() {
      yield* produce(names.sensorsTopic, [
        { key: "7", value: `{"id": 7, "type": "thermo", "location": "hall-a"}` },
        { key: "8", value: `{"id": 8}` },
        { key: "7", value: `{"id": 7, "type": "thermo", "location": "hall-b"}` }
      ])
      const client = yield* queryClient
      const listed = yield* pollUntil(
        client.sensors.listSensors({ urlParams: { page: 1, page_size: 100 } }),
        (page) => page.sensors.length === 2 && page.sensors[0]?.location === "hall-b"
      ).pipe(Effect.timeout("30 seconds"))
      expect(listed.sensors).toEqual([
        { id: 7, type: "thermo", location: "hall-b" },
        { id: 8, type: "", location: "" }
      ])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("dead-letters an unreadable record and keeps the partition flowing", () => {
    const names = uniqueNames("poison")
    return Effect.gen(function*() {
      yield* produce(names.readingsTopic, [
        { key: "1", value: `[{"ts": 1646409307, "sensor_id": 1, "temperature": nan}]`, partition: 0 },
        { key: "1", value: `[{"ts": 1646409308, "sensor_id": 1, "temperature": 21}]`, partition: 0 }
      ])
      yield* awaitCommittedRecords(2)
      yield* awaitRows(1)
      const letters = yield* consumeAll(`${names.readingsTopic}.dlq`, 1)
      expect(letters).toHaveLength(1)
      expect(letters[0]?.value).toBe(`[{"ts": 1646409307, "sensor_id": 1, "temperature": nan}]`)
      expect(letters[0]?.headers[deadLetterHeaders.topic]).toBe(names.readingsTopic)
      expect(letters[0]?.headers[deadLetterHeaders.partition]).toBe("0")
      expect(letters[0]?.headers[deadLetterHeaders.offset]).toBe("0")
      expect(letters[0]?.headers[deadLetterHeaders.errorTag]).toBe("InvalidMessage")
      expect(letters[0]?.headers[deadLetterHeaders.reason]).toContain("not valid JSON")
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("stores a redelivered reading once", () => {
    const names = uniqueNames("redelivery")
    return Effect.gen(function*() {
      const message = `[{"ts": 1646409307, "sensor_id": 3, "temperature": 30}, {"ts": 1646409307, "sensor_id": 3, "temperature": 31}]`
      yield* produce(names.readingsTopic, [{ key: "3", value: message }, { key: "3", value: message }])
      yield* awaitCommittedRecords(2)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ value: number }>`select value from sensor_data`
      expect(rows).toEqual([{ value: 31 }])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("resumes after a restart without reprocessing committed records", () => {
    const names = uniqueNames("restart")
    const reading = (second: number) => ({
      key: "5",
      value: JSON.stringify([{ ts: 1646409300 + second, sensor_id: 5, temperature: second }])
    })
    return Effect.gen(function*() {
      const database = Layer.succeedContext(yield* Layer.build(TestDatabase))
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => effect.pipe(Effect.provide(pipelineLayer(names, database)))

      yield* produce(names.readingsTopic, [0, 1, 2].map(reading))
      const first = yield* run(awaitCommittedRecords(3))
      expect(first.records).toBe(3)

      yield* produce(names.readingsTopic, [3, 4].map(reading))
      // A second run that re-read the first three records would count 5 here, not 2.
      const second = yield* run(Effect.zipLeft(awaitCommittedRecords(2), Effect.sleep("2 seconds")))
      expect(second.records).toBe(2)

      const sql = yield* SqlClient.SqlClient.pipe(Effect.provide(database))
      const rows = yield* sql<{ count: number }>`select count(*)::int8 as count from sensor_data`
      expect(rows[0]?.count).toBe(5)
    })
  })

  // PostgreSQL's avg(float8) also sums the squares, which overflows above about 1e154, so the
  // averages are computed from sums and counts. The ingest job accepts magnitudes up to 1e290.
  it.scopedLive("averages readings at the value bound", () => {
    const names = uniqueNames("extreme")
    return Effect.gen(function*() {
      yield* produce(names.readingsTopic, [
        { key: "9", value: `[{"ts": 1646409307, "sensor_id": 9, "temperature": 1e290}, {"ts": 1646409308, "sensor_id": 9, "temperature": 3e289}]` }
      ])
      yield* awaitRows(2)
      const client = yield* queryClient
      const expected = (1e290 + 3e289) / 2
      const averages = yield* client.sensors.averages({ urlParams: {} })
      expect(averages.data).toEqual([{ period: "2022-03-04T15:30:00.000Z", avg_temp: expected, avg_cpu: null }])
      const aggregates = yield* client.sensors.aggregates({ urlParams: { metric: ["temperature" as never], fn: "avg", bucket: 60 } })
      expect(aggregates.data).toEqual([{ period: "2022-03-04T15:55:00.000Z", values: { temperature: expected } }])
      expect(aggregates.truncated).toBe(false)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("rejects an invalid query parameter with 400 and the reason", () => {
    const names = uniqueNames("badquery")
    return Effect.gen(function*() {
      const badFrom = yield* getRaw("/v1/sensor-data?from=yesterday")
      expect(badFrom.status).toBe(400)
      expect(JSON.stringify(badFrom.body)).toContain("yesterday")

      const reversed = yield* getRaw("/v1/sensor-data?from=1646409307&to=1646409306")
      expect(reversed.status).toBe(400)
      expect(reversed.body).toEqual({
        _tag: "InvalidQuery",
        parameter: "to",
        value: "2022-03-04T15:55:06.000Z",
        message: `"to" must be later than "from" (2022-03-04T15:55:07.000Z); the range is [from, to)`
      })

      const tooMany = yield* getRaw("/v1/aggregates?metric=temperature&bucket=1s&from=0&to=1764000000")
      expect(tooMany.status).toBe(400)
      expect(tooMany.body.parameter).toBe("bucket")
      expect(String(tooMany.body.message)).toContain("maximum of 10000")

      const unknownRoute = yield* getRaw("/v1/nope")
      expect(unknownRoute.status).toBe(404)
      expect(unknownRoute.body._tag).toBe("NotFound")

      const page = yield* getRaw("/v1/sensors?page_size=100000")
      expect(page.status).toBe(400)
      expect(JSON.stringify(page.body)).toContain("page_size")
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })
})
