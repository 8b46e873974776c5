import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { deadLetterHeaders } from "../../src/ingest/DeadLetter.ts"
import { StorageMaintenance } from "../../src/ingest/StorageMaintenance.ts"
import {
  awaitCommittedRecords,
  awaitNoLag,
  consumeAll,
  getRaw,
  pipelineLayer,
  produce,
  TestDatabase,
  uniqueNames
} from "../support/TestPipeline.ts"

/** Readings records, produced in this order to partition 0, each with the outcome the decoding rules give it. */
const readingCases = [
  { sensor: 1, value: `[{"ts": 1646409307, "sensor_id": 1, "temperature": 30, "cpu": 20}]` },
  { sensor: 2, value: `{"ts": 1646409307123, "sensor_id": 2, "co2": 415.5}` },
  { sensor: 3, value: `{"ts": 1646409307123456, "sensor_id": 3, "cpu": 3}` },
  { sensor: 4, value: `{"ts": 1646409307.5, "sensor_id": 4, "cpu": 4}` },
  { sensor: 5, value: `{"ts": 99999999999999, "sensor_id": 5, "cpu": 5}`, tag: "InvalidReading", reason: "5138" },
  { sensor: 6, value: `[{"ts": 1646409307, "sensor_id": 6, "temperature": nan}]`, tag: "InvalidMessage", reason: "not valid JSON" },
  { sensor: 7, value: `{"ts": 1646409307, "sensor_id": 7, "cpu": 1e999}`, tag: "InvalidReading", reason: "expected a finite number" },
  { sensor: 8, value: `{"ts": 1646409307, "sensor_id": 8, "temperature": null, "cpu": 8}` },
  { sensor: 9, value: `{"ts": 1646409307, "sensor_id": 9, "cpu": "21.5"}`, tag: "InvalidReading", reason: `field "cpu" = "21.5"` },
  { sensor: 10, value: `{"ts": 1646409307, "sensor_id": "7", "cpu": 10}`, tag: "InvalidReading", reason: `field "sensor_id" = "7"` },
  { sensor: 11, value: `[{"ts": 1646409307, "sensor_id": 11, "temperature": 30}, {"ts": 1646409308, "sensor_id": 11, "temperature": 30.5}]` },
  { sensor: 12, value: `[{"ts": 1646409309, "sensor_id": 12, "cpu": 12}]` },
  { sensor: 17, value: `{"ts": 1646409307, "sensor_id": 17, "temperature": 1e290}` },
  {
    sensor: 18,
    value: `{"ts": 1646409307, "sensor_id": 18, "temperature": 1.1e290}`,
    tag: "InvalidReading",
    reason: `[0] invalid reading: field "temperature" = 1.1e+290: expected a magnitude of at most 1e+290, so that sums of the values stay finite`
  },
  {
    sensor: 19,
    value: `[{"ts": 1646409307, "sensor_id": 19, "temperature": -1e300}, {"ts": 1646409308, "sensor_id": 19, "temperature": 19}]`,
    tag: "InvalidReading",
    reason: `[0] invalid reading: field "temperature" = -1e+300: expected a magnitude of at most 1e+290, so that sums of the values stay finite`
  },
  // Two finite values whose float8 sum overflows. Once stored, they made every sum over them fail.
  {
    sensor: 600,
    value: `[{"ts": 1646409310, "sensor_id": 600, "temperature": 1e308}, {"ts": 1646409311, "sensor_id": 600, "temperature": 1.7976931348623157e308}]`,
    tag: "InvalidReading",
    reason: `[0] invalid reading: field "temperature" = 1e+308: expected a magnitude of at most 1e+290`
  },
  {
    sensor: 20,
    value: `{"ts": 1646409307, "sensor_id": 20, "": 5}`,
    tag: "InvalidReading",
    reason: `[0] invalid reading: field "" = 5: invalid metric name`
  },
  {
    sensor: 21,
    value: `{"ts": 1646409307, "sensor_id": 18446744073709551616, "cpu": 21}`,
    tag: "InvalidReading",
    reason: `field "sensor_id" = 18446744073709552000: expected a non-negative integer of at most 9007199254740991`
  }
]

const label50 = "a".repeat(50)

/** Sensor announcements, produced in this order to partition 0. */
const sensorCases = [
  { sensor: 1, value: `{"id": 1, "type": "thermo", "location": "hall-a"}` },
  { sensor: 13, value: JSON.stringify({ id: 13, type: "a".repeat(51) }), tag: "InvalidMessage", reason: "expected at most 50 characters, got 51" },
  { sensor: 14, value: `{"id": 14, "type": 5}`, tag: "InvalidMessage", reason: `field "type" = 5: expected a string of at most 50 characters` },
  {
    sensor: 15,
    value: `{"id": 15, "location": "a\\u0000b"}`,
    tag: "InvalidMessage",
    reason: `field "location" = "a\\u0000b": contains the character U+0000, which PostgreSQL text cannot store`
  },
  { sensor: 16, value: JSON.stringify({ id: 16, type: label50, location: "hall-b" }) },
  {
    sensor: 17,
    value: JSON.stringify({ id: 17, type: "t".repeat(62) }),
    tag: "InvalidMessage",
    reason: `field "type" = "${"t".repeat(62)}": expected at most 50 characters, got 62`
  },
  { sensor: 18, value: `[{"id": 18}]`, tag: "InvalidMessage", reason: `expected one JSON object with "id", "type" and "location", got [{"id":18}]` },
  { sensor: 19, value: `{"type": "thermo"}`, tag: "InvalidMessage", reason: `field "id" is missing: expected a non-negative integer` }
]

describe("decoding rules on the real broker and embedded TimescaleDB", () => {
  it.scopedLive("every decoding rule end to end", () => {
    const names = uniqueNames("decoding")
    return Effect.gen(function*() {
      yield* produce(names.readingsTopic, readingCases.map(({ sensor, value }) => ({ key: String(sensor), value, partition: 0 })))
      yield* produce(names.sensorsTopic, sensorCases.map(({ sensor, value }) => ({ key: String(sensor), value, partition: 0 })))
      yield* awaitCommittedRecords(readingCases.length + sensorCases.length)
      yield* awaitNoLag(names.groupId, [names.readingsTopic, names.sensorsTopic])
      const sql = yield* SqlClient.SqlClient

      const rows = yield* sql<{ sensorId: number; name: string; time: string; value: number; type: string }>`
        select d.sensor_id as "sensorId", m.name, to_char(d.time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as time,
               d.value, pg_typeof(d.value)::text as type
        from sensor_data d join metrics m on m.id = d.metric_id
        order by d.sensor_id, d.time, m.name`
      expect(rows.map(({ type: _type, ...row }) => row)).toEqual([
        { sensorId: 1, name: "cpu", time: "2022-03-04T15:55:07.000000", value: 20 },
        { sensorId: 1, name: "temperature", time: "2022-03-04T15:55:07.000000", value: 30 },
        { sensorId: 2, name: "co2", time: "2022-03-04T15:55:07.123000", value: 415.5 },
        { sensorId: 3, name: "cpu", time: "2022-03-04T15:55:07.123456", value: 3 },
        { sensorId: 4, name: "cpu", time: "2022-03-04T15:55:07.500000", value: 4 },
        { sensorId: 8, name: "cpu", time: "2022-03-04T15:55:07.000000", value: 8 },
        { sensorId: 11, name: "temperature", time: "2022-03-04T15:55:07.000000", value: 30 },
        { sensorId: 11, name: "temperature", time: "2022-03-04T15:55:08.000000", value: 30.5 },
        { sensorId: 12, name: "cpu", time: "2022-03-04T15:55:09.000000", value: 12 },
        { sensorId: 17, name: "temperature", time: "2022-03-04T15:55:07.000000", value: 1e290 },
        { sensorId: 19, name: "temperature", time: "2022-03-04T15:55:08.000000", value: 19 }
      ])
      expect(new Set(rows.map((row) => row.type))).toEqual(new Set(["double precision"]))

      const years = yield* sql<{ first: number; last: number }>`
        select extract(year from min(time))::int as first, extract(year from max(time))::int as last from sensor_data`
      expect(years).toEqual([{ first: 2022, last: 2022 }])

      // Announced sensors keep their labels; sensors that only sent readings are registered empty.
      const sensors = yield* sql<{ id: number; type: string; location: string }>`select id, type, location from sensors order by id`
      expect(sensors).toEqual([
        { id: 1, type: "thermo", location: "hall-a" },
        { id: 2, type: "", location: "" },
        { id: 3, type: "", location: "" },
        { id: 4, type: "", location: "" },
        { id: 8, type: "", location: "" },
        { id: 11, type: "", location: "" },
        { id: 12, type: "", location: "" },
        { id: 16, type: label50, location: "hall-b" },
        { id: 17, type: "", location: "" },
        { id: 19, type: "", location: "" }
      ])

      const expectDeadLetters = (
        topic: string,
        cases: ReadonlyArray<{ sensor: number; value: string; tag?: string; reason?: string }>,
        letters: ReadonlyArray<{ value: string; headers: Record<string, string> }>
      ) => {
        const rejected = cases.filter((entry) => entry.tag !== undefined)
        expect(letters.map((letter) => letter.value).sort()).toEqual(rejected.map((entry) => entry.value).sort())
        for (const entry of rejected) {
          const letter = letters.find((candidate) => candidate.value === entry.value)!
          expect(letter.headers[deadLetterHeaders.topic]).toBe(topic)
          expect(letter.headers[deadLetterHeaders.partition]).toBe("0")
          expect(letter.headers[deadLetterHeaders.offset]).toBe(String(cases.indexOf(entry)))
          expect(letter.headers[deadLetterHeaders.errorTag]).toBe(entry.tag)
          expect(letter.headers[deadLetterHeaders.reason]).toContain(entry.reason)
          expect(letter.headers[deadLetterHeaders.reason]).not.toContain("\n")
        }
      }
      const readingLetters = yield* consumeAll(`${names.readingsTopic}.dlq`, 10)
      expectDeadLetters(names.readingsTopic, readingCases, readingLetters)
      const sensorLetters = yield* consumeAll(`${names.sensorsTopic}.dlq`, 6)
      expectDeadLetters(names.sensorsTopic, sensorCases, sensorLetters)

      // Sums over the stored values stay finite, so the averages and a refresh of the read models succeed.
      const averages = yield* getRaw("/v1/sensor-data/avg")
      expect(averages.status).toBe(200)
      const buckets = averages.body.data as ReadonlyArray<{ avg_temp: number | null }>
      expect(buckets).toHaveLength(1)
      expect(buckets[0]?.avg_temp).toBeCloseTo(1e290 / 5, -280)
      yield* (yield* StorageMaintenance).runOnce
      const [materialized] = yield* sql<{ total: number }>`select sum(value_sum) as total from sensor_data_1m`
      expect(materialized?.total).toBeCloseTo(1e290, -280)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })
})
