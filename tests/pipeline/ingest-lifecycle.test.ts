import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Exit, Fiber, Layer, Scope } from "effect"
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
  pipelineLayer,
  pollUntil,
  produce,
  TestDatabase,
  uniqueNames
} from "../support/TestPipeline.ts"

/** Record `index` of a test: sensor `index % 50`, one second later every 50 records, two metrics. */
const record = (index: number, partition?: number) => ({
  key: String(index % 50),
  value: JSON.stringify([{ ts: 1646409307 + Math.floor(index / 50), sensor_id: index % 50, temperature: index, cpu: index % 7 }]),
  ...(partition === undefined ? {} : { partition })
})

const range = (from: number, count: number) => Array.from({ length: count }, (_, index) => from + index)

const countRows = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ count: number }>`select count(*)::int8 as count from sensor_data`.pipe(Effect.map((rows) => rows[0]?.count ?? 0)))

/** The shared embedded database of a test that starts the pipeline more than once. */
const sharedDatabase = Effect.map(Layer.build(TestDatabase), (context) => Layer.succeedContext(context))

describe("ingest lifecycle on the real broker and embedded TimescaleDB", () => {
  it.scopedLive("backlog stays within the in-flight limit", () => {
    const names = uniqueNames("backlog")
    const maxRecords = 200
    const fetchMaxBytes = 8192
    const sendSize = 30
    const total = 3000
    return Effect.gen(function*() {
      // Produced before the job starts, in small sends, so the backlog is many small record batches.
      for (let first = 0; first < total; first += sendSize) {
        yield* produce(names.readingsTopic, range(first, sendSize).map((index) => record(index, 0)))
      }
      const smallestValue = Math.min(...range(0, total).map((index) => record(index).value.length))
      const database = yield* sharedDatabase
      const status = yield* Effect.gen(function*() {
        yield* awaitCommittedRecords(total, "120 seconds")
        const job = yield* IngestJob
        return (yield* job.partitions).find((partition) => partition.topic === names.readingsTopic && partition.partition === 0)!
      }).pipe(
        Effect.provide(pipelineLayer(names, database, {
          INGEST_PARTITION_MAX_RECORDS: String(maxRecords),
          INGEST_FETCH_MAX_BYTES: String(fetchMaxBytes),
          INGEST_BATCH_MAX_ROWS: "100",
          INGEST_LINGER_MS: "20"
        }))
      )
      expect(status.pauses).toBeGreaterThan(0)
      // At most the limit plus one fetch: fetchMaxBytes of records, or one whole record batch
      // (one send) when the first batch of a fetch is larger.
      const oneFetch = Math.floor(fetchMaxBytes / smallestValue) + sendSize
      expect(status.peakRecords).toBeLessThanOrEqual(maxRecords + oneFetch)
      expect(status.peakRecords).toBeLessThan(total / 4)
      expect(status.records).toBe(0)
      expect(yield* countRows.pipe(Effect.provide(database))).toBe(total * 2)
    })
  })

  it.scopedLive("shutdown writes and commits held records", () => {
    const names = uniqueNames("shutdown")
    return Effect.gen(function*() {
      const database = yield* sharedDatabase
      yield* Effect.gen(function*() {
        yield* produce(names.readingsTopic, range(0, 40).map((index) => record(index)))
        // The linger is a minute, so the records wait in the partitions' batches.
        yield* awaitPartitions(
          (partitions) => partitions.filter((partition) => partition.topic === names.readingsTopic).reduce((sum, p) => sum + p.records, 0) === 40,
          "40 records held"
        )
        expect(yield* countRows).toBe(0)
      }).pipe(Effect.provide(pipelineLayer(names, database, { INGEST_LINGER_MS: "60000" })))

      expect(yield* countRows.pipe(Effect.provide(database))).toBe(80)
      const committed = yield* committedOffsets(names.groupId, names.readingsTopic)
      expect(Object.values(committed).reduce((sum, offset) => sum + Math.max(offset, 0), 0)).toBe(40)
    })
  })

  it.scopedLive("stuck shutdown is bounded, restart recovers", () => {
    const names = uniqueNames("stuck-shutdown")
    const settings = { INGEST_SHUTDOWN_TIMEOUT_MS: "2000", INGEST_RETRY_INITIAL_MS: "50", INGEST_RETRY_MAX_MS: "200" }
    return Effect.gen(function*() {
      const database = yield* sharedDatabase
      const sql = yield* SqlClient.SqlClient.pipe(Effect.provide(database))
      yield* sql.unsafe(`
        create function fail_inserts() returns trigger language plpgsql as $$
        begin raise exception 'inserts are failing for this test' using errcode = '40001'; end $$`)

      const bodyDone = yield* Effect.gen(function*() {
        yield* sql.unsafe(`create trigger fail_inserts before insert on sensor_data for each statement execute function fail_inserts()`)
        yield* produce(names.readingsTopic, range(0, 10).map((index) => record(index, 0)))
        yield* awaitTotals((totals) => totals.retries >= 2, "two retried writes")
        return yield* Clock.currentTimeMillis
      }).pipe(Effect.provide(pipelineLayer(names, database, settings)))
      const stoppedAfter = (yield* Clock.currentTimeMillis) - bodyDone
      // The drain waits for its timeout, then the worker is interrupted and the member leaves.
      expect(stoppedAfter).toBeGreaterThanOrEqual(2000)
      expect(stoppedAfter).toBeLessThan(20_000)
      expect((yield* committedOffsets(names.groupId, names.readingsTopic))[0]).toBe(-1)
      expect(yield* countRows.pipe(Effect.provide(database))).toBe(0)

      yield* sql.unsafe(`drop trigger fail_inserts on sensor_data`)
      yield* Effect.gen(function*() {
        yield* awaitRows(20)
        yield* awaitNoLag(names.groupId, [names.readingsTopic])
      }).pipe(Effect.provide(pipelineLayer(names, database, settings)))
      const rows = yield* sql<{ sensor: number; name: string; value: number }>`
        select sensor_id as sensor, m.name, value from sensor_data d join metrics m on m.id = d.metric_id order by sensor_id, m.name`
      expect(rows).toEqual(range(0, 10).flatMap((index) => [
        { sensor: index, name: "cpu", value: index % 7 },
        { sensor: index, name: "temperature", value: index }
      ]))
    })
  })

  it.scopedLive("rebalance to a second member loses nothing", () => {
    const names = uniqueNames("rebalance")
    return Effect.gen(function*() {
      const database = yield* sharedDatabase
      // Each member gets its own scope, closed when the test ends unless the test closes it first.
      const startMember = Effect.gen(function*() {
        const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
        const context = yield* Layer.buildWithScope(pipelineLayer(names, database, { INGEST_LINGER_MS: "200" }), scope)
        return { scope, context }
      })
      type Member = Effect.Effect.Success<typeof startMember>
      const assigned = (member: Member) =>
        Effect.flatMap(IngestJob, (job) => job.partitions).pipe(
          Effect.map((partitions) => partitions.map((partition) => `${partition.topic}[${partition.partition}]`).sort()),
          Effect.provide(member.context)
        )
      const handled = (member: Member) =>
        Effect.flatMap(IngestStats, (stats) => stats.totals).pipe(Effect.map((totals) => totals.records), Effect.provide(member.context))

      const first = yield* startMember
      yield* produce(names.readingsTopic, range(0, 200).map((index) => record(index)))
      yield* awaitCommittedRecords(200).pipe(Effect.provide(first.context))
      expect(yield* assigned(first)).toHaveLength(4)

      // The second member joins while records keep arriving, so the first one notices the
      // rebalance while it handles a fetch and drains its partitions before it joins again.
      const producing = yield* Effect.forEach(
        range(0, 50),
        (step) => Effect.zipRight(produce(names.readingsTopic, range(200 + step * 4, 4).map((index) => record(index))), Effect.sleep("40 millis")),
        { discard: true }
      ).pipe(Effect.forkScoped)
      yield* Effect.sleep("500 millis")
      const second = yield* startMember
      yield* Fiber.join(producing)
      yield* pollUntil(
        Effect.zip(assigned(first), assigned(second)),
        ([a, b]) => a.length > 0 && b.length > 0 && a.length + b.length === 4
      ).pipe(Effect.timeout("60 seconds"))
      // On a loaded machine the second member can take longer to join than the producer takes to
      // finish, so these records, on all 50 keys, make sure each member has some of its own.
      yield* produce(names.readingsTopic, range(400, 100).map((index) => record(index)))
      yield* awaitNoLag(names.groupId, [names.readingsTopic])
      expect(yield* countRows.pipe(Effect.provide(database))).toBe(500 * 2)
      const handledBySecond = yield* handled(second)
      expect(handledBySecond).toBeGreaterThan(0)

      // The second member leaves; the first takes its partitions back.
      yield* Scope.close(second.scope, Exit.void)
      yield* produce(names.readingsTopic, range(500, 100).map((index) => record(index)))
      yield* pollUntil(assigned(first), (partitions) => partitions.length === 4).pipe(Effect.timeout("60 seconds"))
      yield* awaitNoLag(names.groupId, [names.readingsTopic])
      expect(yield* countRows.pipe(Effect.provide(database))).toBe(600 * 2)
      yield* Effect.logInfo("Records handled by each member, redeliveries included").pipe(
        Effect.annotateLogs({ first: yield* handled(first), second: handledBySecond, produced: 600 })
      )
    })
  })
})
