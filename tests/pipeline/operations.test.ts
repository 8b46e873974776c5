import { it } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect } from "vitest"
import { fetchMetrics, histogramSeries, sampleValue } from "../support/Prometheus.ts"
import { awaitCommittedRecords, pipelineLayer, pollUntil, produce, serverUrl, TestDatabase, uniqueNames } from "../support/TestPipeline.ts"

interface Readiness {
  readonly status: string
  readonly checks: Record<string, { readonly status: string; readonly error?: string; readonly details?: Record<string, unknown> }>
}

const getJson = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, contentType: response.headers.get("content-type"), body: (await response.json()) as unknown }
  })

const metricsText = Effect.flatMap(serverUrl, (url) => Effect.promise(() => fetchMetrics(url)))

describe("operations endpoints of the pipeline", () => {
  it.scopedLive("counts records, readings and dead letters in /metrics", () => {
    const names = uniqueNames("metrics")
    const topic = { topic: names.readingsTopic }
    return Effect.gen(function*() {
      yield* produce(names.readingsTopic, [
        { key: "1", value: `[{"ts": 1646409307, "sensor_id": 1, "temperature": 30, "cpu": 20}]`, partition: 0 },
        { key: "1", value: `[{"ts": 1646409308, "sensor_id": 1, "temperature": 31}, {"ts": 1646409309, "sensor_id": 1, "temperature": 32}]`, partition: 0 },
        { key: "1", value: `not json`, partition: 0 },
        { key: "2", value: `[{"ts": 1646409310, "sensor_id": 2, "cpu": 5}]`, partition: 1 }
      ])
      yield* awaitCommittedRecords(4)

      const url = yield* serverUrl
      const response = yield* Effect.promise(() => fetch(`${url}/metrics`))
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
      const text = yield* Effect.promise(() => response.text())

      expect(sampleValue(text, "sensor_logger_ingest_records_consumed_total", topic)).toBe(4)
      expect(sampleValue(text, "sensor_logger_ingest_readings_written_total", topic)).toBe(4)
      expect(sampleValue(text, "sensor_logger_ingest_rows_written_total", topic)).toBe(5)
      expect(sampleValue(text, "sensor_logger_ingest_dead_letters_total", { ...topic, error: "InvalidMessage" })).toBe(1)
      expect(sampleValue(text, "sensor_logger_ingest_retries_total", topic)).toBe(0)
      const committedBatches = sampleValue(text, "sensor_logger_ingest_batches_total", { ...topic, outcome: "committed" })
      expect(committedBatches).toBeGreaterThanOrEqual(2)

      const sizes = histogramSeries(text, "sensor_logger_ingest_batch_records", topic)
      expect(sizes.count).toBe(committedBatches)
      expect(sizes.sum).toBe(4)
      const flushes = histogramSeries(text, "sensor_logger_ingest_flush_duration_seconds", topic)
      expect(flushes.count).toBe(committedBatches)
      expect(flushes.buckets["+Inf"]).toBe(committedBatches)

      for (const partition of ["0", "1"]) {
        expect(sampleValue(text, "sensor_logger_ingest_consumer_lag", { ...topic, partition })).toBe(0)
      }
      expect(sampleValue(text, "sensor_logger_ingest_rebalances_total")).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("counts each query request in its route's histogram", () => {
    const names = uniqueNames("latency")
    const series = { method: "GET", route: "/v1/sensors", status: "200" }
    return Effect.gen(function*() {
      const url = yield* serverUrl
      const before = histogramSeries(yield* metricsText, "sensor_logger_http_server_request_duration_seconds", series)
      for (let request = 0; request < 3; request++) {
        const response = yield* Effect.promise(() => fetch(`${url}/v1/sensors?page_size=5`))
        expect(response.status).toBe(200)
      }
      const badRequest = yield* Effect.promise(() => fetch(`${url}/v1/sensors?page_size=100000`))
      expect(badRequest.status).toBe(400)
      const unknown = yield* Effect.promise(() => fetch(`${url}/no/such/path/${Date.now()}`))
      expect(unknown.status).toBe(404)

      const text = yield* metricsText
      const after = histogramSeries(text, "sensor_logger_http_server_request_duration_seconds", series)
      expect(after.count - before.count).toBe(3)
      expect(after.sum).toBeGreaterThan(before.sum)
      const rejected = histogramSeries(text, "sensor_logger_http_server_request_duration_seconds", { ...series, status: "400" })
      expect(rejected.count).toBeGreaterThanOrEqual(1)
      const unmatched = histogramSeries(text, "sensor_logger_http_server_request_duration_seconds", {
        method: "GET",
        route: "unmatched",
        status: "404"
      })
      expect(unmatched.count).toBeGreaterThanOrEqual(1)
      expect(text).not.toContain("/no/such/path")
      const scrapes = histogramSeries(text, "sensor_logger_http_server_request_duration_seconds", {
        method: "GET",
        route: "/metrics",
        status: "200"
      })
      expect(scrapes.count).toBeGreaterThanOrEqual(1)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })

  it.scopedLive("reports every check in /health/ready", () => {
    const names = uniqueNames("ready")
    return Effect.gen(function*() {
      const url = yield* serverUrl
      const live = yield* getJson(`${url}/health/live`)
      expect(live.status).toBe(200)
      expect(live.body).toEqual({ status: "alive" })

      const ready = yield* pollUntil(getJson(`${url}/health/ready`), (result) => result.status === 200).pipe(
        Effect.timeout("60 seconds")
      )
      expect(ready.contentType).toContain("application/json")
      const report = ready.body as Readiness
      expect(report.status).toBe("ready")
      expect(Object.keys(report.checks).sort()).toEqual([
        "ingest.consumer",
        "ingest.database",
        "ingest.kafka",
        "ingest.progress",
        "query.database"
      ])
      for (const [name, check] of Object.entries(report.checks)) {
        expect(check.status, name).toBe("up")
      }
      expect(report.checks["ingest.database"]?.details).toEqual({ mode: "embedded" })
      expect(report.checks["ingest.kafka"]?.details?.["brokers"]).toBe(1)
    }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)))
  })
})
