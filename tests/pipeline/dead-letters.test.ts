import { it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { execFile } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect } from "vitest"
import { deadLetterHeaders, writeRejectedTag } from "../../src/ingest/DeadLetter.ts"
import { replayDeadLetters, type ReplayOptions } from "../../src/ingest/DeadLetterReplay.ts"
import {
  awaitCommittedRecords,
  awaitNoLag,
  awaitRows,
  consumeAll,
  endOffsets,
  pipelineLayer,
  produce,
  TestDatabase,
  testBrokers,
  uniqueNames
} from "../support/TestPipeline.ts"

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** Runs `sensor-logger ARGS` against the test broker and returns its standard output. */
const runCli = (args: ReadonlyArray<string>) =>
  Effect.async<string, Error>((resume) => {
    execFile(
      process.execPath,
      [path.join(repositoryRoot, "bin/sensor-logger.js"), ...args],
      { cwd: repositoryRoot, env: { ...process.env, KAFKA_BROKERS: testBrokers().join(","), LOG_LEVEL: "warning" }, timeout: 90_000 },
      (error, stdout, stderr) => {
        if (error !== null) resume(Effect.fail(new Error(`sensor-logger ${args.join(" ")} failed: ${error.message}\n${stderr}`)))
        else resume(Effect.succeed(stdout))
      }
    )
  })

/** Readings of sensors 30 to 49, one record each; the records at offsets 5 and 13 carry a value the test's constraint forbids. */
const poisonOffsets = [5, 13]
const readingRecords = Array.from({ length: 20 }, (_, index) => ({
  key: String(30 + index),
  value: JSON.stringify([{ ts: 1646409307 + index, sensor_id: 30 + index, temperature: poisonOffsets.includes(index) ? 666 : index, cpu: index }]),
  headers: { traceparent: `00-${String(index).padStart(32, "0")}-${"1".padStart(16, "0")}-01` },
  partition: 0
}))
const notJson = { key: "50", value: `[{"ts": 1646409307, "sensor_id": 50, "temperature": nan}]`, partition: 0 }

describe("dead letters on the real broker and embedded TimescaleDB", () => {
  it.scopedLive("rejected records are isolated and replayed", () => {
    const names = uniqueNames("rejected")
    const deadLetterTopic = `${names.readingsTopic}.dlq`
    const replayOptions = (overrides: Partial<ReplayOptions>): ReplayOptions => ({
      deadLetterTopic,
      groupId: `${names.groupId}.replay-dlq`,
      errorTags: [],
      sourcePartition: Option.none(),
      fromOffset: Option.none(),
      toOffset: Option.none(),
      dryRun: false,
      ...overrides
    })
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // No decoded reading makes this database fail, so a constraint of the test plays that part.
      yield* sql`alter table sensor_data add constraint temperature_not_666 check (value <> 666)`
      yield* produce(names.readingsTopic, [...readingRecords, notJson])
      const totals = yield* awaitCommittedRecords(21)
      yield* awaitNoLag(names.groupId, [names.readingsTopic])
      expect(totals.rejected).toBe(2)
      expect(totals.deadLetters).toBe(3)
      const [stored] = yield* sql<{ rows: number; sensors: number }>`
        select count(*)::int8 as rows, count(distinct sensor_id)::int8 as sensors from sensor_data`
      expect(stored).toEqual({ rows: 36, sensors: 18 })

      const letters = yield* consumeAll(deadLetterTopic, 3)
      expect(letters.map((letter) => letter.headers[deadLetterHeaders.offset]).sort()).toEqual(["13", "20", "5"])
      for (const offset of poisonOffsets) {
        const letter = letters.find((candidate) => candidate.headers[deadLetterHeaders.offset] === String(offset))!
        expect(letter.value).toBe(readingRecords[offset]!.value)
        expect(letter.key).toBe(readingRecords[offset]!.key)
        expect(letter.headers.traceparent).toBe(readingRecords[offset]!.headers.traceparent)
        expect(letter.headers[deadLetterHeaders.errorTag]).toBe(writeRejectedTag)
        expect(letter.headers[deadLetterHeaders.reason]).toContain(`violates check constraint "temperature_not_666"`)
        expect(letter.headers[deadLetterHeaders.reason]).toContain("SQLSTATE 23514")
      }

      // The fix.
      yield* sql`alter table sensor_data drop constraint temperature_not_666`

      const dryRun = yield* replayDeadLetters(replayOptions({ errorTags: [writeRejectedTag], dryRun: true }))
      expect(dryRun).toEqual({ scanned: 3, replayed: 2, skipped: 1, invalid: 0, byTopic: { [names.readingsTopic]: 2 }, dryRun: true })
      expect(yield* endOffsets(names.readingsTopic)).toEqual({ 0: 21, 1: 0 })

      const replayed = yield* replayDeadLetters(replayOptions({ errorTags: [writeRejectedTag] }))
      expect(replayed).toEqual({ scanned: 3, replayed: 2, skipped: 1, invalid: 0, byTopic: { [names.readingsTopic]: 2 }, dryRun: false })
      yield* awaitRows(40)
      yield* awaitNoLag(names.groupId, [names.readingsTopic])
      const [replayedRows] = yield* sql<{ count: number }>`
        select count(*)::int8 as count from sensor_data where sensor_id = any(${poisonOffsets.map((offset) => 30 + offset)}::int8[])`
      expect(replayedRows?.count).toBe(4)

      // The re-published records are the originals: same key, value and headers, no dlq.* header.
      // The producer places them by key, so they need not land in partition 0 again.
      const source = yield* consumeAll(names.readingsTopic, 23)
      const republished = source.filter((record) => record.partition !== 0 || Number(record.offset) >= 21)
      expect(republished.map((record) => record.value).sort()).toEqual(poisonOffsets.map((offset) => readingRecords[offset]!.value).sort())
      for (const record of republished) {
        const original = readingRecords.find((candidate) => candidate.value === record.value)!
        expect(record.key).toBe(original.key)
        expect(record.headers).toEqual(original.headers)
      }

      const again = yield* replayDeadLetters(replayOptions({ errorTags: [writeRejectedTag] }))
      expect(again).toEqual({ scanned: 0, replayed: 0, skipped: 0, invalid: 0, byTopic: {}, dryRun: false })

      // The command line, with another group and a source offset range, as a dry run.
      const output = yield* runCli([
        "replay-dlq",
        "--topic",
        names.readingsTopic,
        "--group",
        `${names.groupId}.cli`,
        "--from-offset",
        "13",
        "--to-offset",
        "20",
        "--dry-run"
      ])
      expect(output).toContain(`deadLetterTopic  ${deadLetterTopic}`)
      expect(output).toContain("scanned          3")
      expect(output).toContain("wouldReplay      2")
      expect(output).toContain("skipped          1")
      const ends = yield* endOffsets(names.readingsTopic)
      expect(Object.values(ends).reduce((sum, end) => sum + end, 0)).toBe(23)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase, { INGEST_LINGER_MS: "2000" })))
  })
})
