import { it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { describe, expect } from "vitest"
import { tracingLayer } from "../../src/runtime/telemetry/Tracing.ts"
import { defaultMetrics, runSimulator } from "../../src/tools/simulator/Simulator.ts"
import { descendantsOf, type OtlpReceiver, type ReceivedSpan, spanKind, startOtlpReceiver } from "../support/OtlpReceiver.ts"
import { awaitRows, pipelineLayer, produce, serverUrl, TestDatabase, uniqueNames } from "../support/TestPipeline.ts"

const producerTraceId = "0af7651916cd43dd8448eb211c80319c"
const producerSpanId = "b7ad6b7169203331"
const clientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const clientSpanId = "00f067aa0ba902b7"

const receiver = Effect.acquireRelease(Effect.promise(startOtlpReceiver), (started) => Effect.promise(started.close))

/** Exports to `otlp` with every span sampled, as the process would with OTEL_EXPORTER_OTLP_ENDPOINT set. */
const exportTo = (otlp: OtlpReceiver) =>
  tracingLayer({
    tracesUrl: Option.some(`${otlp.endpoint}/v1/traces`),
    headers: Redacted.make({}),
    serviceName: "sensor-logger-test",
    resourceAttributes: { "deployment.environment": "test" },
    sampler: "parentbased_always_on",
    samplerRatio: 1
  })

const named = (spans: ReadonlyArray<ReceivedSpan>, name: string) => spans.filter((span) => span.name === name)

describe("tracing over OTLP/HTTP", () => {
  it.scopedLive("continues a producer's trace through the batch to the database write", () => {
    const names = uniqueNames("tracing")
    return Effect.gen(function*() {
      const otlp = yield* receiver
      yield* Effect.gen(function*() {
        yield* produce(names.readingsTopic, [{
          key: "1",
          value: `[{"ts": 1646409307, "sensor_id": 1, "temperature": 30, "cpu": 20}]`,
          headers: { traceparent: `00-${producerTraceId}-${producerSpanId}-01`, tracestate: "vendor=abc" }
        }])
        yield* awaitRows(2)
        const url = yield* serverUrl
        const response = yield* Effect.promise(() =>
          fetch(`${url}/v1/sensor-data?page_size=10`, { headers: { traceparent: `00-${clientTraceId}-${clientSpanId}-01` } })
        )
        expect(response.status).toBe(200)
      }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)), Effect.provide(exportTo(otlp)))

      // Closing the tracing layer flushed the spans, so they have all arrived by now.
      const spans = otlp.spans()
      expect(otlp.contentTypes().every((type) => type.startsWith("application/json"))).toBe(true)

      const batches = named(spans, "IngestJob.batch").filter((span) => span.attributes["messaging.destination.name"] === names.readingsTopic)
      expect(batches).toHaveLength(1)
      const batch = batches[0]!
      expect(batch.traceId).toBe(producerTraceId)
      expect(batch.parentSpanId).toBe(producerSpanId)
      expect(batch.traceState).toBe("vendor=abc")
      expect(batch.kind).toBe(spanKind.consumer)
      expect(batch.serviceName).toBe("sensor-logger-test")
      expect(batch.attributes["messaging.system"]).toBe("kafka")
      expect(batch.attributes["messaging.consumer.group.name"]).toBe(names.groupId)
      expect(batch.attributes["messaging.batch.message_count"]).toBe(1)
      expect(batch.attributes["messaging.kafka.offset.first"]).toBe("0")
      expect(batch.attributes["messaging.kafka.offset.last"]).toBe("0")
      expect(typeof batch.attributes["messaging.destination.partition.id"]).toBe("string")
      expect(batch.attributes["readings"]).toBe(1)
      expect(batch.attributes["rows"]).toBe(2)

      const below = descendantsOf(spans, batch)
      expect(named(below, "PartitionConsumer.commit")).toHaveLength(1)
      const writes = named(below, "SensorDataWriter.write")
      expect(writes).toHaveLength(1)
      const statements = descendantsOf(spans, writes[0]!).filter((span) => span.name === "sql.execute")
      const insert = statements.find((span) => String(span.attributes["db.query.text"]).includes("insert into sensor_data"))
      expect(insert).toBeDefined()
      expect(insert!.attributes["db.system.name"]).toBe("postgresql")

      const requests = spans.filter((span) => span.kind === spanKind.server && span.attributes["http.route"] === "/v1/sensor-data")
      expect(requests).toHaveLength(1)
      const request = requests[0]!
      expect(request.traceId).toBe(clientTraceId)
      expect(request.parentSpanId).toBe(clientSpanId)
      expect(request.attributes["http.response.status_code"]).toBe(200)
      const queries = descendantsOf(spans, request).filter((span) => span.name === "sql.execute")
      expect(queries.some((span) => String(span.attributes["db.query.text"]).includes("sensor_data"))).toBe(true)

      // Probes and scrapes are not traced.
      expect(spans.some((span) => span.attributes["url.path"] === "/health/ready")).toBe(false)
    })
  })

  it.scopedLive("continues the simulator's send spans", () => {
    const names = uniqueNames("simulated")
    return Effect.gen(function*() {
      const otlp = yield* receiver
      yield* Effect.gen(function*() {
        yield* runSimulator({
          sensors: 2,
          rate: 20,
          readingsPerMessage: 1,
          metrics: defaultMetrics,
          count: 4,
          seed: 7,
          readingsTopic: names.readingsTopic,
          sensorsTopic: names.sensorsTopic
        })
        yield* awaitRows(8)
      }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)), Effect.provide(exportTo(otlp)))

      const spans = otlp.spans()
      const sends = spans.filter((span) =>
        span.name === "KafkaProducer.send" && span.attributes["messaging.destination.name"] === names.readingsTopic
      )
      expect(sends.length).toBeGreaterThan(0)
      expect(sends.every((span) => span.kind === spanKind.producer)).toBe(true)
      const sendIds = new Set(sends.map((span) => span.spanId))
      const batches = named(spans, "IngestJob.batch").filter((span) => span.attributes["messaging.destination.name"] === names.readingsTopic)
      expect(batches.length).toBeGreaterThan(0)
      for (const batch of batches) {
        const producers = batch.parentSpanId === undefined ? batch.links.map((link) => link.spanId) : [batch.parentSpanId]
        expect(producers.length).toBeGreaterThan(0)
        expect(producers.every((id) => sendIds.has(id))).toBe(true)
      }
    })
  })

  it.scopedLive("starts a new trace for records without a traceparent", () => {
    const names = uniqueNames("untraced")
    return Effect.gen(function*() {
      const otlp = yield* receiver
      yield* Effect.gen(function*() {
        yield* produce(names.readingsTopic, [{ key: "2", value: `[{"ts": 1646409307, "sensor_id": 2, "temperature": 1}]` }])
        yield* awaitRows(1)
      }).pipe(Effect.provide(pipelineLayer(names, TestDatabase)), Effect.provide(exportTo(otlp)))

      const batch = named(otlp.spans(), "IngestJob.batch").find((span) =>
        span.attributes["messaging.destination.name"] === names.readingsTopic
      )
      expect(batch).toBeDefined()
      expect(batch!.parentSpanId).toBeUndefined()
      expect(batch!.links).toEqual([])
      expect(batch!.attributes["sensor_logger.traced_records"]).toBe(0)
      expect(named(descendantsOf(otlp.spans(), batch!), "SensorDataWriter.write")).toHaveLength(1)
    })
  })
})
