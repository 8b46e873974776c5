import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { IngestJob } from "../../src/ingest/IngestJob.ts"
import { IngestStats } from "../../src/ingest/IngestStats.ts"
import {
  awaitCommittedRecords,
  awaitNoLag,
  awaitPartitions,
  awaitRows,
  awaitTotals,
  committedOffsets,
  consumeAll,
  pipelineLayer,
  produce,
  TestDatabase,
  uniqueNames
} from "../support/TestPipeline.ts"

const reading = (sensor: number, ts: number, temperature: number) =>
  JSON.stringify([{ ts, sensor_id: sensor, temperature }])

/** Produces three records with one key, each in its own send (so its own fetch), within one linger. */
const produceCorrections = (topic: string) =>
  Effect.gen(function*() {
    yield* produce(topic, [{ key: "3", value: reading(3, 1646409307, 30), partition: 0 }])
    yield* produce(topic, [{ key: "3", value: reading(3, 1646409307, 31), partition: 0 }])
    yield* produce(topic, [{ key: "3", value: reading(3, 1646409307, 32), partition: 0 }])
  })

/** Fetches the job accepted for partition 0 of `topic`. */
const fetchesOfPartition0 = (topic: string) =>
  Effect.flatMap(IngestJob, (job) => job.partitions).pipe(
    Effect.map((partitions) => partitions.find((partition) => partition.topic === topic && partition.partition === 0)?.fetches ?? 0)
  )

const storedTemperatures = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ value: number }>`select value from sensor_data where sensor_id = 3 order by time`.pipe(Effect.map((rows) => rows.map((row) => row.value)))
)

describe("delivery on the real broker and embedded TimescaleDB", () => {
  it.scopedLive("update rule across combined fetches", () => {
    const names = uniqueNames("conflict-update")
    return Effect.gen(function*() {
      yield* produceCorrections(names.readingsTopic)
      const combined = yield* awaitCommittedRecords(3)
      // The three fetches waited for each other within the linger and became one write.
      expect(yield* fetchesOfPartition0(names.readingsTopic)).toBe(3)
      expect(combined.batches).toBe(1)
      expect(yield* storedTemperatures).toEqual([32])

      yield* produce(names.readingsTopic, [{ key: "3", value: reading(3, 1646409307, 29), partition: 0 }])
      yield* awaitCommittedRecords(4)
      expect(yield* storedTemperatures).toEqual([29])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase, { INGEST_LINGER_MS: "3000" })))
  })

  it.scopedLive("ignore rule keeps the first value", () => {
    const names = uniqueNames("conflict-ignore")
    return Effect.gen(function*() {
      yield* produceCorrections(names.readingsTopic)
      const combined = yield* awaitCommittedRecords(3)
      expect(yield* fetchesOfPartition0(names.readingsTopic)).toBe(3)
      expect(combined.batches).toBe(1)
      expect(yield* storedTemperatures).toEqual([30])

      yield* produce(names.readingsTopic, [{ key: "3", value: reading(3, 1646409307, 29), partition: 0 }])
      yield* awaitCommittedRecords(4)
      expect(yield* storedTemperatures).toEqual([30])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase, { INGEST_LINGER_MS: "3000", INGEST_ON_CONFLICT: "ignore" })))
  })

  it.scopedLive("stores a 16,384-reading message completely", () => {
    const names = uniqueNames("large-message")
    const readings = Array.from({ length: 16_384 }, (_, index) => ({
      ts: 1646409307 + index,
      sensor_id: 1 + (index % 16),
      temperature: index / 10,
      cpu: index % 100
    }))
    const value = JSON.stringify(readings)
    return Effect.gen(function*() {
      // The local broker accepts records up to 1 MiB, Kafka's default.
      expect(value.length).toBeLessThan(1024 * 1024)
      yield* produce(names.readingsTopic, [{ key: "1", value }])
      const totals = yield* awaitCommittedRecords(1)
      expect(totals.readings).toBe(16_384)
      expect(totals.deadLetters).toBe(0)
      const sql = yield* SqlClient.SqlClient
      const [count] = yield* sql<{ rows: number; sensors: number }>`
        select count(*)::int8 as rows, count(distinct sensor_id)::int8 as sensors from sensor_data`
      expect(count).toEqual({ rows: 32_768, sensors: 16 })
      const [last] = yield* sql<{ value: number }>`
        select value from sensor_data d join metrics m on m.id = d.metric_id
        where m.name = 'temperature' and d.time = to_timestamp(${1646409307 + 16_383})`
      expect(last?.value).toBe(1638.3)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("write outage commits nothing until fixed", () => {
    const names = uniqueNames("write-outage")
    const records = Array.from({ length: 5 }, (_, index) => ({
      key: String(index),
      value: JSON.stringify([{ ts: 1646409307 + index, sensor_id: 20, temperature: index, cpu: 100 + index }]),
      partition: 0
    }))
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // A statement trigger simulates the outage: every insert fails with the SQLSTATE given.
      yield* sql.unsafe(`
        create function fail_inserts() returns trigger language plpgsql as $$
        begin raise exception 'inserts are failing for this test' using errcode = TG_ARGV[0]; end $$`)
      yield* sql.unsafe(`create trigger fail_inserts before insert on sensor_data for each statement execute function fail_inserts('40001')`)
      yield* produce(names.readingsTopic, records)
      yield* awaitTotals((totals) => totals.retries >= 3, "three retried writes")
      yield* awaitPartitions(
        (partitions) => partitions.some((status) => status.topic === names.readingsTopic && status.partition === 0 && status.paused),
        "a paused partition"
      )
      expect((yield* committedOffsets(names.groupId, names.readingsTopic))[0]).toBe(-1)

      // A failure that is not the data's fault either (insufficient_privilege) is retried too,
      // and nothing is dead-lettered.
      yield* sql.unsafe(`drop trigger fail_inserts on sensor_data`)
      yield* sql.unsafe(`create trigger fail_inserts before insert on sensor_data for each statement execute function fail_inserts('42501')`)
      const before = (yield* (yield* IngestStats).totals).retries
      yield* awaitTotals((totals) => totals.retries >= before + 2, "two more retried writes")
      expect((yield* committedOffsets(names.groupId, names.readingsTopic))[0]).toBe(-1)
      const [stored] = yield* sql<{ count: number }>`select count(*)::int8 as count from sensor_data`
      expect(stored?.count).toBe(0)

      yield* sql.unsafe(`drop trigger fail_inserts on sensor_data`)
      yield* awaitRows(10)
      yield* awaitNoLag(names.groupId, [names.readingsTopic])
      const rows = yield* sql<{ ts: number; name: string; value: number }>`
        select extract(epoch from time)::int8 as ts, m.name, value from sensor_data d join metrics m on m.id = d.metric_id
        order by time, m.name`
      expect(rows).toEqual(records.flatMap((_, index) => [
        { ts: 1646409307 + index, name: "cpu", value: 100 + index },
        { ts: 1646409307 + index, name: "temperature", value: index }
      ]))
      const totals = yield* (yield* IngestStats).totals
      expect(totals.deadLetters).toBe(0)
      expect(yield* consumeAll(`${names.readingsTopic}.dlq`, 1, 3_000)).toEqual([])
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase, { INGEST_RETRY_INITIAL_MS: "50", INGEST_RETRY_MAX_MS: "200" })))
  })
})
