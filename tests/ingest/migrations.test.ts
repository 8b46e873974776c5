import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Reading } from "../../src/domain/Reading.ts"
import { MIGRATIONS_TABLE, runMigrations } from "../../src/ingest/Migrations.ts"
import { SensorDataWriter } from "../../src/ingest/SensorDataWriter.ts"
import { StorageMaintenance } from "../../src/ingest/StorageMaintenance.ts"
import { Database } from "../../src/runtime/database/Database.ts"
import { EmbeddedDatabaseServer } from "../../src/runtime/database/EmbeddedDatabaseServer.ts"

/** Runs `effect` with a logger that records every message, and returns the messages with the result. */
const withLoggedMessages = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const messages: Array<string> = []
    const logger = Logger.make(({ message }) => {
      messages.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    })
    const result = yield* effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    return { result, messages }
  })

/** What the migrations left in the database: the migrations table and the hypertables. */
const schemaState = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const migrations = yield* sql<{ migrationId: number; name: string }>`
    select migration_id as "migrationId", name from ${sql(MIGRATIONS_TABLE)} order by migration_id`.withoutTransform
  const hypertables = yield* sql<{ name: string }>`
    select hypertable_name as name from timescaledb_information.hypertables order by hypertable_name`.withoutTransform
  const seriesIndexes = yield* sql<{ name: string }>`
    select indexname as name from pg_indexes where indexname like 'sensor_data_%_series_idx' order by indexname`.withoutTransform
  return { migrations, hypertables: hypertables.map((row) => row.name), seriesIndexes: seriesIndexes.map((row) => row.name) }
})

/** Every migration, as the migrations table lists it once applied. */
const ALL_MIGRATIONS = [
  { migrationId: 1, name: "create_tables" },
  { migrationId: 2, name: "create_read_models" },
  { migrationId: 3, name: "index_read_model_series" }
]

const appliedCount = (messages: ReadonlyArray<string>) => messages.filter((message) => message === "Applied migration").length

const ServerLayer = EmbeddedDatabaseServer.layer({ dataDir: "memory://", host: "127.0.0.1", port: 0 })

layer(ServerLayer, { timeout: 120_000, excludeTestServices: true })("runMigrations on the database server", (it) => {
  it.effect("applies migrations once for two clients", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      // Two pools, as two ingest processes would have. Each run gets its own.
      const runOn = () => withLoggedMessages(runMigrations).pipe(Effect.provide(Database.layerServer(url, { maxConnections: 2 })))

      const [first, second] = yield* Effect.all([runOn(), runOn()], { concurrency: "unbounded" })
      const state = yield* schemaState.pipe(Effect.provide(Database.layerServer(url, { maxConnections: 1 })))

      expect(state.migrations).toEqual(ALL_MIGRATIONS)
      expect(state.hypertables).toContain("sensor_data")
      // One run applied every migration, and the other found them applied.
      const counts = [appliedCount(first.messages), appliedCount(second.messages)].sort((a, b) => a - b)
      expect(counts).toEqual([0, ALL_MIGRATIONS.length])
    }))

  // The storage policies are replaced at every start, so two processes starting together remove
  // and add the same policies. Several rounds make an overlap of the two likely.
  it.effect("applies policies for concurrent starts", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      const database = Database.layerServer(url, { maxConnections: 1 })
      yield* runMigrations.pipe(Effect.provide(database))
      const startOn = () =>
        Effect.flatMap(StorageMaintenance, (maintenance) => maintenance.start).pipe(
          Effect.provide(StorageMaintenance.Default.pipe(Layer.provideMerge(Database.layerServer(url, { maxConnections: 2 })))),
          Effect.scoped,
          Effect.either
        )

      for (let round = 0; round < 5; round++) {
        const results = yield* Effect.all([startOn(), startOn()], { concurrency: "unbounded" })
        expect(results.filter((result) => result._tag === "Left")).toEqual([])
      }
      const jobs = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        return yield* sql<{ procName: string; count: number }>`
          select proc_name as "procName", count(*)::int4 as count from timescaledb_information.jobs
          where proc_name in ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
          group by proc_name order by proc_name`.withoutTransform
      }).pipe(Effect.provide(database))

      // One compression policy (the default compresses after 7 days, retention is off) and one
      // refresh policy per continuous aggregate.
      expect(jobs).toEqual([
        { procName: "policy_compression", count: 1 },
        { procName: "policy_refresh_continuous_aggregate", count: 3 }
      ])
    }))

  it.effect("applies nothing when the schema is current", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      const database = Database.layerServer(url, { maxConnections: 1 })

      // The previous test may have run first. After this run the schema is current either way.
      yield* runMigrations.pipe(Effect.provide(database))
      const again = yield* withLoggedMessages(runMigrations).pipe(Effect.provide(database))
      const state = yield* schemaState.pipe(Effect.provide(database))

      expect(appliedCount(again.messages)).toBe(0)
      expect(state.migrations).toEqual(ALL_MIGRATIONS)
    }))
})

describe("runMigrations on the embedded database", () => {
  it.scopedLive("applies migrations once over two runs", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Database.layerEmbedded("memory://"))
      const first = yield* withLoggedMessages(runMigrations).pipe(Effect.provide(context))
      const second = yield* withLoggedMessages(runMigrations).pipe(Effect.provide(context))
      const state = yield* schemaState.pipe(Effect.provide(context))

      expect(appliedCount(first.messages)).toBe(ALL_MIGRATIONS.length)
      expect(appliedCount(second.messages)).toBe(0)
      expect(state.migrations).toEqual(ALL_MIGRATIONS)
      expect(state.hypertables).toContain("sensor_data")
      expect(state.seriesIndexes).toEqual(["sensor_data_1d_series_idx", "sensor_data_1h_series_idx", "sensor_data_1m_series_idx"])
    }), 120_000)

  // A reopened PGlite database must load TimescaleDB fully before the first write: once the read
  // models existed, the second start of the ingest job failed in its storage policies and writes.
  it.scopedLive("starts and writes again after a reopen", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "sensor-logger-reopen-"))),
        (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
      )
      const reading = (seconds: number): Reading => ({ time: seconds * 1_000_000, sensorId: 1, metrics: { temperature: seconds } }) as unknown as Reading
      // One start of the ingest job's storage side: migrations, policies, then a write.
      const startAndWrite = (seconds: number) =>
        Effect.gen(function*() {
          yield* runMigrations
          yield* (yield* StorageMaintenance).start
          const writer = yield* SensorDataWriter
          return yield* writer.write([reading(seconds)], [], { onConflict: "update", maxRowsPerStatement: 20_000 })
        }).pipe(
          Effect.provide(Layer.mergeAll(SensorDataWriter.Default, StorageMaintenance.Default).pipe(Layer.provideMerge(Database.layerEmbedded(dataDir)))),
          Effect.scoped
        )

      const firstRows = yield* startAndWrite(1_646_409_307)
      const secondRows = yield* startAndWrite(1_646_409_308)
      const stored = yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ count: number }>`select count(*)::int4 as count from sensor_data`
        return row!.count
      }).pipe(Effect.provide(Database.layerEmbedded(dataDir)), Effect.scoped)

      expect(firstRows).toBe(1)
      expect(secondRows).toBe(1)
      expect(stored).toBe(2)
    }), 180_000)
})
