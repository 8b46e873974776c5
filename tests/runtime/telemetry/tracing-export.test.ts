import { createServer } from "node:http"
import { it } from "@effect/vitest"
import { Effect, HashMap, Logger, Option, Redacted } from "effect"
import { describe, expect } from "vitest"
import { tracingLayer } from "../../../src/runtime/telemetry/Tracing.ts"

/** A collector that rejects every export request with 400, which the exporter does not retry. */
const rejectingCollector = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ url: string; close: () => void; requests: () => number }>((resolve) => {
      let requests = 0
      const server = createServer((request, response) => {
        requests += 1
        request.resume()
        request.on("end", () => response.writeHead(400, { "content-type": "application/json" }).end(`{"message":"rejected"}`))
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resolve({ url: `http://127.0.0.1:${port}/v1/traces`, close: () => server.close(), requests: () => requests })
      })
    })
  ),
  (collector) => Effect.sync(collector.close)
)

describe("trace export", () => {
  it.scopedLive("logs rejected exports as warnings", () =>
    Effect.gen(function*() {
      const collector = yield* rejectingCollector
      const lines: Array<string> = []
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        const fields = HashMap.toEntries(annotations).map(([key, value]) => `${key}=${String(value)}`)
        lines.push([logLevel.label, String(message), ...fields].join(" "))
      })
      const layer = tracingLayer({
        tracesUrl: Option.some(collector.url),
        headers: Redacted.make({}),
        serviceName: "sensor-logger-test",
        resourceAttributes: {},
        sampler: "always_on",
        samplerRatio: 1
      })
      yield* Effect.gen(function*() {
        yield* Effect.withSpan(Effect.void, "first")
        yield* Effect.withSpan(Effect.void, "second")
        // The span processor exports every 5 seconds by default (OTEL_BSP_SCHEDULE_DELAY).
        yield* Effect.sleep("6 seconds")
        yield* Effect.withSpan(Effect.void, "third")
      }).pipe(Effect.provide(layer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      // The periodic export's warning comes from the exporter's callback, on a fiber of its own.
      yield* Effect.sleep("200 millis")

      expect(collector.requests()).toBe(2)
      const periodic = lines.filter((line) => line.startsWith("WARN OpenTelemetry:"))
      expect(periodic).toHaveLength(1)
      expect(periodic[0]).toContain("otel=error")
      const final = lines.filter((line) => line.startsWith("WARN Failed to export the last spans"))
      expect(final).toHaveLength(1)
    }))
})
