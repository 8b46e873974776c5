import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { deadLetterHeaders } from "../../src/ingest/DeadLetter.ts"
import {
  awaitCommittedRecords,
  awaitNoLag,
  consumeAll,
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
  { sensor: 12, value: `[{"ts": 1646409309, "sensor_id": 12, "cpu": 12}]` }
]

const label50 = "a".repeat(50)

/** Sensor announcements, produced in this order to partition 0. */
const sensorCases = [
  { sensor: 1, value: `{"id": 1, "type": "thermo", "location": "hall-a"}` },
  { sensor: 13, value: JSON.stringify({ id: 13, type: "a".repeat(51) }), tag: "InvalidMessage", reason: "expected at most 50 characters, got 51" },
  { sensor: 14, value: `{"id": 14, "type": 5}`, tag: "InvalidMessage", reason: "Expected string, actual 5" },
  { sensor: 15, value: `{"id": 15, "location": "a\\u0000b"}`, tag: "InvalidMessage", reason: "U+0000" },
  { sensor: 16, value: JSON.stringify({ id: 16, type: label50, location: "hall-b" }) }
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
        { sensorId: 12, name: "cpu", time: "2022-03-04T15:55:09.000000", value: 12 }
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
        { id: 16, type: label50, location: "hall-b" }
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
        }
      }
      const readingLetters = yield* consumeAll(`${names.readingsTopic}.dlq`, 5)
      expectDeadLetters(names.readingsTopic, readingCases, readingLetters)
      const sensorLetters = yield* consumeAll(`${names.sensorsTopic}.dlq`, 3)
      expectDeadLetters(names.sensorsTopic, sensorCases, sensorLetters)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })
})
