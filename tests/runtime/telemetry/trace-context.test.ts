import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import {
  batchTraceOptions,
  currentTraceHeaders,
  formatTraceparent,
  parseTraceparent,
  traceParentFromHeaders,
  TracingEnabled
} from "../../../src/runtime/telemetry/TraceContext.ts"

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
const spanId = "00f067aa0ba902b7"
const valid = `00-${traceId}-${spanId}-01`

describe("traceparent parsing", () => {
  it("reads a version 00 header", () => {
    const parsed = parseTraceparent(valid, "vendor=value")
    expect(Option.getOrThrow(parsed)).toEqual({ traceId, spanId, traceFlags: 1, traceState: "vendor=value" })
  })

  it("rejects malformed headers", () => {
    const cases = [
      "",
      "00-abc-def-01",
      `00-${traceId.toUpperCase()}-${spanId}-01`,
      `00-${"0".repeat(32)}-${spanId}-01`,
      `00-${traceId}-${"0".repeat(16)}-01`,
      `ff-${traceId}-${spanId}-01`,
      `00-${traceId}-${spanId}-01-extra`
    ]
    for (const header of cases) {
      expect(Option.isNone(parseTraceparent(header)), header).toBe(true)
    }
  })

  it("accepts later versions with more fields", () => {
    const parsed = parseTraceparent(`01-${traceId}-${spanId}-00-future`)
    expect(Option.getOrThrow(parsed).traceFlags).toBe(0)
  })

  it("reads Buffer, string and repeated headers", () => {
    expect(Option.isSome(traceParentFromHeaders({ traceparent: Buffer.from(valid) }))).toBe(true)
    expect(Option.isSome(traceParentFromHeaders({ traceparent: valid }))).toBe(true)
    expect(Option.getOrThrow(traceParentFromHeaders({ traceparent: [valid, "junk"] })).spanId).toBe(spanId)
    expect(Option.isNone(traceParentFromHeaders(undefined))).toBe(true)
    expect(Option.isNone(traceParentFromHeaders({ other: "x" }))).toBe(true)
  })

  it("formats what it parses", () => {
    expect(formatTraceparent({ traceId, spanId, sampled: true })).toBe(valid)
    expect(formatTraceparent({ traceId, spanId, sampled: false })).toBe(`00-${traceId}-${spanId}-00`)
  })
})

describe("batch trace options", () => {
  const header = (span: string, trace = traceId) => ({ headers: { traceparent: `00-${trace}-${span}-01` } })

  it("continues a single producer context", () => {
    const options = batchTraceOptions([header(spanId), header(spanId), { headers: {} }])
    expect(Option.getOrThrow(options.parent).spanId).toBe(spanId)
    expect(options.links).toEqual([])
    expect(options.tracedRecords).toBe(2)
  })

  it("links to each distinct context", () => {
    const options = batchTraceOptions([header("1111111111111111"), header("2222222222222222"), header("1111111111111111")])
    expect(Option.isNone(options.parent)).toBe(true)
    expect(options.links.map((link) => link.span.spanId)).toEqual(["1111111111111111", "2222222222222222"])
    expect(options.droppedLinks).toBe(0)
  })

  it("caps the links", () => {
    const messages = Array.from({ length: 5 }, (_, index) => header(`${index + 1}`.padStart(16, "0")))
    const options = batchTraceOptions(messages, 3)
    expect(options.links).toHaveLength(3)
    expect(options.droppedLinks).toBe(2)
    expect(options.tracedRecords).toBe(5)
  })

  it("starts a new trace without contexts", () => {
    const options = batchTraceOptions([{ headers: {} }, {}])
    expect(Option.isNone(options.parent)).toBe(true)
    expect(options.links).toEqual([])
    expect(options.tracedRecords).toBe(0)
  })
})

describe("trace headers of outgoing records", () => {
  it("are empty while tracing is off", () => {
    const headers = Effect.runSync(currentTraceHeaders.pipe(Effect.withSpan("send")))
    expect(headers).toEqual({})
  })

  it("carry the current span while tracing is on", () => {
    const [headers, span] = Effect.runSync(
      Effect.all([currentTraceHeaders, Effect.currentSpan]).pipe(
        Effect.withSpan("send"),
        Effect.provideService(TracingEnabled, true)
      )
    )
    expect(headers).toEqual({ traceparent: `00-${span.traceId}-${span.spanId}-01` })
  })

  it("are empty without a span", () => {
    expect(Effect.runSync(currentTraceHeaders.pipe(Effect.provideService(TracingEnabled, true)))).toEqual({})
  })
})
