/**
 * W3C Trace Context (`traceparent`, `tracestate`) in Kafka record headers: parsing what producers
 * sent, and the span options of a consumer batch that continues those traces.
 *
 * @module
 */
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { Context, Effect, Option, type Tracer } from "effect"
import type { IHeaders } from "kafkajs"

/** Header names defined by W3C Trace Context level 1. */
export const traceparentHeader = "traceparent"
export const tracestateHeader = "tracestate"

/** A producer's span context as carried by `traceparent` (and `tracestate`). */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string
  /** 16 lowercase hex digits, not all zero. */
  readonly spanId: string
  /** Trace flags; bit 0 is "sampled". */
  readonly traceFlags: number
  readonly traceState: string | undefined
}

const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/**
 * Parses a `traceparent` value. Returns none for a malformed value, version `ff`, an all-zero
 * trace or span id, and for version 00 with trailing fields. A later version may append fields,
 * which are ignored, as the W3C Trace Context specification requires.
 */
export const parseTraceparent = (value: string, traceState?: string): Option.Option<TraceParent> => {
  const match = traceparentPattern.exec(value.trim())
  if (match === null) return Option.none()
  const [, version, traceId, spanId, flags, rest] = match
  if (version === "ff" || (version === "00" && rest !== undefined)) return Option.none()
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return Option.none()
  const state = traceState?.trim()
  return Option.some({
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: Number.parseInt(flags!, 16),
    traceState: state === undefined || state === "" ? undefined : state
  })
}

/** Formats a version-00 `traceparent`. */
export const formatTraceparent = (context: { readonly traceId: string; readonly spanId: string; readonly sampled: boolean }) =>
  `00-${context.traceId}-${context.spanId}-${context.sampled ? "01" : "00"}`

/** Returns a header's value as text; kafkajs gives a Buffer, a string or, for a repeated header, an array (the first counts). */
const headerText = (headers: IHeaders | undefined, name: string): string | undefined => {
  if (headers === undefined) return undefined
  const value = headers[name]
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined ? undefined : first.toString()
}

/** Reads the trace context of a Kafka record from its headers; none when absent or malformed. */
export const traceParentFromHeaders = (headers: IHeaders | undefined): Option.Option<TraceParent> => {
  const traceparent = headerText(headers, traceparentHeader)
  if (traceparent === undefined) return Option.none()
  return parseTraceparent(traceparent, headerText(headers, tracestateHeader))
}

/** The remote span a `TraceParent` names, for use as a parent or a link target. */
export const toExternalSpan = (parent: TraceParent): Tracer.ExternalSpan =>
  OtelTracer.makeExternalSpan({
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.traceFlags,
    traceState: parent.traceState
  })

/** Span links a batch span carries at most; OpenTelemetry SDKs keep 128 links a span by default. */
export const maxBatchLinks = 128

/** How a span over a batch of records relates to the traces the records came with. */
export interface BatchTraceOptions {
  /** The producer's span when every record that has a context shares that one context. */
  readonly parent: Option.Option<Tracer.ExternalSpan>
  /** One link per distinct producer context, when there are several; at most `maxLinks`. */
  readonly links: ReadonlyArray<Tracer.SpanLink>
  /** Records whose headers carried a valid `traceparent`. */
  readonly tracedRecords: number
  /** Distinct producer contexts that did not fit in `links`. */
  readonly droppedLinks: number
}

/**
 * Decides the parent and links of a batch span from the records' headers. A batch whose traced
 * records all share one producer context continues that trace as a child. A batch with several
 * contexts starts a new trace that links to each of them, up to `maxLinks`. A batch without
 * any context starts a new trace with no links.
 */
export const batchTraceOptions = (
  messages: ReadonlyArray<{ readonly headers?: IHeaders | undefined }>,
  maxLinks: number = maxBatchLinks
): BatchTraceOptions => {
  const distinct = new Map<string, TraceParent>()
  let tracedRecords = 0
  for (const message of messages) {
    const parent = traceParentFromHeaders(message.headers)
    if (Option.isNone(parent)) continue
    tracedRecords += 1
    const key = `${parent.value.traceId}-${parent.value.spanId}`
    if (!distinct.has(key)) distinct.set(key, parent.value)
  }
  if (distinct.size === 1) {
    const only = distinct.values().next().value as TraceParent
    return { parent: Option.some(toExternalSpan(only)), links: [], tracedRecords, droppedLinks: 0 }
  }
  const links: Array<Tracer.SpanLink> = []
  for (const parent of distinct.values()) {
    if (links.length >= maxLinks) break
    links.push({ _tag: "SpanLink", span: toExternalSpan(parent), attributes: {} })
  }
  return { parent: Option.none(), links, tracedRecords, droppedLinks: distinct.size - links.length }
}

/**
 * Whether spans are exported. The tracing layer sets it when an OTLP endpoint is configured, and
 * producers add `traceparent` to the records they send only then.
 */
export class TracingEnabled extends Context.Reference<TracingEnabled>()("sensor-logger/TracingEnabled", {
  defaultValue: () => false
}) {}

/**
 * Returns the `traceparent` and `tracestate` headers of the current span, or no headers when
 * tracing is off or no span is active.
 */
export const currentTraceHeaders: Effect.Effect<Record<string, string>> = Effect.gen(function*() {
  if (!(yield* TracingEnabled)) return {}
  const span = yield* Effect.option(Effect.currentSpan)
  if (Option.isNone(span)) return {}
  const headers: Record<string, string> = { [traceparentHeader]: formatTraceparent(span.value) }
  const otelSpan = yield* Effect.option(OtelTracer.currentOtelSpan)
  const traceState = Option.isSome(otelSpan) ? otelSpan.value.spanContext().traceState?.serialize() : undefined
  if (traceState !== undefined && traceState !== "") headers[tracestateHeader] = traceState
  return headers
})
