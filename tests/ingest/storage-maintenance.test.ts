import { SqlClient } from "@effect/sql"
import { ConfigProvider, Effect, Either, Option } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { storageConfig } from "../../src/ingest/StorageConfig.ts"
import { StorageMaintenance } from "../../src/ingest/StorageMaintenance.ts"
import { parseMetrics, sampleValue } from "../support/Prometheus.ts"
import { type DeviceReading, fetchText, type QueryPipeline, startQueryPipeline, storedValues } from "../support/QueryFixture.ts"
import { pollUntil } from "../support/TestPipeline.ts"

const readStorageConfig = (settings: Record<string, string>) =>
  Effect.runSync(Effect.either(Effect.withConfigProvider(storageConfig, ConfigProvider.fromMap(new Map(Object.entries(settings))))))

describe("storage config", () => {
  it("has documented defaults", () => {
    const config = readStorageConfig({})
    expect(Either.isRight(config)).toBe(true)
    if (Either.isRight(config)) {
      expect(Option.getOrNull(config.right.compressAfter)).toBe("7 days")
      expect(Option.isNone(config.right.retention)).toBe(true)
      expect(config.right.refreshIntervalMillis).toBe(60_000)
    }
  })

  it("normalises an age and accepts off", () => {
    const config = readStorageConfig({ STORAGE_COMPRESS_AFTER: "off", STORAGE_RETENTION: "2 Weeks" })
    expect(Either.isRight(config)).toBe(true)
    if (Either.isRight(config)) {
      expect(Option.isNone(config.right.compressAfter)).toBe(true)
      expect(Option.getOrNull(config.right.retention)).toBe("2 weeks")
    }
  })

  it("rejects an age without a unit", () => {
    const config = readStorageConfig({ STORAGE_RETENTION: "30" })
    expect(Either.isLeft(config)).toBe(true)
    expect(Either.isLeft(config) ? String(config.left) : "").toContain(`"30" is not an age`)
  })
})

const failuresMetric = "sensor_logger_ingest_maintenance_failures_total"
const lastSuccessMetric = "sensor_logger_ingest_maintenance_last_success_timestamp_seconds"

const day0 = Date.UTC(2022, 2, 4) / 1000
const readings: Array<DeviceReading> = Array.from({ length: 120 }, (_, minute) => ({ ts: day0 + minute * 60, sensor_id: 1, temperature: minute }))

describe("storage maintenance on the embedded database", () => {
  let pipeline: QueryPipeline

  beforeAll(async () => {
    pipeline = await startQueryPipeline("maintenance", {
      READ_MODEL_REFRESH_INTERVAL_MS: "500",
      STORAGE_COMPRESS_AFTER: "30 days",
      STORAGE_RETENTION: "100 years"
    })
    await pipeline.write(readings, storedValues(readings).length)
  }, 180_000)

  afterAll(() => pipeline?.dispose())

  it("applies the configured policies", async () => {
    const jobs = await pipeline.run(Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ proc_name: string; config: Record<string, unknown> }>`
        select proc_name, config from timescaledb_information.jobs
        where proc_name in ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
        order by proc_name, job_id`))
    expect(jobs.filter((job) => job.proc_name === "policy_compression").map((job) => job.config.compress_after)).toEqual(["30 days"])
    expect(jobs.filter((job) => job.proc_name === "policy_retention").map((job) => job.config.drop_after)).toEqual(["100 years"])
    expect(jobs.filter((job) => job.proc_name === "policy_refresh_continuous_aggregate")).toHaveLength(3)
  })

  it("refreshes the read models in process", async () => {
    const served = await pipeline.run(
      pollUntil(
        pipeline.client.sensors.aggregates({ urlParams: { metric: ["temperature"], fn: "sum", bucket: 3600, from: day0 * 1e6, to: (day0 + 7200) * 1e6 } as never }),
        // The 1-minute model is refreshed first, so a request can see it before the 1-hour one.
        (response) => response.read_model === "sensor_data_1h"
      ).pipe(Effect.timeout("60 seconds"))
    )
    expect(served.source).toBe("read_model")
    expect(served.data.map((row) => row.values.temperature)).toEqual([(59 * 60) / 2, (60 + 119) * 60 / 2])
  })

  // The embedded database runs no autovacuum, so only the maintenance gives its planner statistics.
  it("analyzes the chunks it maintains", async () => {
    const chunks = await pipeline.run(
      pollUntil(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ name: string; reltuples: number }>`
            select c.chunk_name as name, k.reltuples
            from timescaledb_information.chunks c
            join pg_class k on k.oid = format('%I.%I', c.chunk_schema, c.chunk_name)::regclass
            where c.hypertable_name = 'sensor_data'
               or c.hypertable_name in (select materialization_hypertable_name from timescaledb_information.continuous_aggregates)`),
        (rows) => rows.length > 0 && rows.every((row) => row.reltuples >= 0)
      ).pipe(Effect.timeout("60 seconds"))
    )
    expect(chunks.length).toBeGreaterThan(3)
    expect(chunks.filter((row) => row.reltuples < 0)).toEqual([])
  })

  it("exports the failure counter from the start", async () => {
    const { text } = await fetchText(pipeline, "/metrics")
    const family = parseMetrics(text).family(failuresMetric)
    expect(family.type).toBe("COUNTER")
    expect(sampleValue(text, failuresMetric)).toBe(0)
  })

  it("compresses chunks older than the configured age", async () => {
    const chunks = await pipeline.run(
      pollUntil(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ is_compressed: boolean }>`select is_compressed from timescaledb_information.chunks where hypertable_name = 'sensor_data'`),
        (rows) => rows.length > 0 && rows.every((row) => row.is_compressed)
      ).pipe(Effect.timeout("60 seconds"))
    )
    expect(chunks.length).toBeGreaterThan(0)
  })
})

describe("storage maintenance metrics", () => {
  let pipeline: QueryPipeline

  beforeAll(async () => {
    pipeline = await startQueryPipeline("maintenance-metrics", { STORAGE_COMPRESS_AFTER: "off" })
    await pipeline.write(readings.slice(0, 10), 10)
  }, 180_000)

  afterAll(() => pipeline?.dispose())

  const metricsText = async () => (await fetchText(pipeline, "/metrics")).text
  const runMaintenance = () => pipeline.run(Effect.either(Effect.flatMap(StorageMaintenance, (maintenance) => maintenance.runOnce)))

  /** Stores two values whose float8 sum overflows, past the ingest job's check, as a database written before it had one. */
  const storeOverflowingValues = () =>
    pipeline.run(Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql`
        insert into sensor_data (time, sensor_id, metric_id, value)
        select to_timestamp(${day0 + 3 * 3600} + n), 1, (select id from metrics where name = 'temperature'), v
        from (values (0, 1e308::float8), (1, 1.7976931348623157e308::float8)) as t(n, v)`))
  const deleteOverflowingValues = () =>
    pipeline.run(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`delete from sensor_data where value > 1e290`))

  it("sets the last success time after a successful run", async () => {
    const startedSeconds = Date.now() / 1000
    const result = await runMaintenance()
    expect(Either.isRight(result)).toBe(true)
    const text = await metricsText()
    expect(sampleValue(text, lastSuccessMetric)).toBeGreaterThanOrEqual(startedSeconds)
    expect(sampleValue(text, lastSuccessMetric)).toBeLessThanOrEqual(Date.now() / 1000)
    expect(sampleValue(text, failuresMetric)).toBe(0)
  })

  it("counts a run whose refresh fails", async () => {
    const before = await metricsText()
    await storeOverflowingValues()
    const failed = await runMaintenance()
    expect(Either.isLeft(failed)).toBe(true)
    if (Either.isLeft(failed)) expect(String((failed.left.cause as { message?: unknown }).message)).toContain("value out of range: overflow")
    const afterFailure = await metricsText()
    expect(sampleValue(afterFailure, failuresMetric)).toBe(sampleValue(before, failuresMetric) + 1)
    expect(sampleValue(afterFailure, lastSuccessMetric)).toBe(sampleValue(before, lastSuccessMetric))

    await deleteOverflowingValues()
    const recovered = await runMaintenance()
    expect(Either.isRight(recovered)).toBe(true)
    const afterRecovery = await metricsText()
    expect(sampleValue(afterRecovery, failuresMetric)).toBe(sampleValue(afterFailure, failuresMetric))
    expect(sampleValue(afterRecovery, lastSuccessMetric)).toBeGreaterThan(sampleValue(afterFailure, lastSuccessMetric))
  })
})
