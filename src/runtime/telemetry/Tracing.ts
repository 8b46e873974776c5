/**
 * Trace export over OTLP/HTTP: the OpenTelemetry tracer provider behind Effect's spans, so every
 * `Effect.withSpan`, `Effect.fn` and `@effect/sql` statement span reaches a collector such as
 * Jaeger. The exporter posts OTLP JSON (`@opentelemetry/exporter-trace-otlp-http` 0.223).
 *
 * @module
 */
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { routeDiagnostics } from "./DiagnosticLog.ts"
import { TracingEnabled } from "./TraceContext.ts"
import { type SamplerName, tracingConfig, type TracingSettings } from "./TracingConfig.ts"

/** Version reported as `service.version`. */
const serviceVersion = "0.1.0"

const describeFailure = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** Maximum wait for the last spans to be exported when the layer is released. */
const shutdownTimeout = Duration.seconds(3)

/**
 * The tracer provider, flushed and shut down on release. A failed final export is logged here,
 * because the SDK reports it only by rejecting the flush.
 */
const tracerProvider = (processor: BatchSpanProcessor, sampler: Sampler) =>
  Layer.scoped(
    OtelTracer.OtelTracerProvider,
    Effect.flatMap(OtelResource.Resource, (resource) =>
      Effect.acquireRelease(
        Effect.sync(() => new NodeTracerProvider({ resource, sampler, spanProcessors: [processor] })),
        (provider) =>
          Effect.tryPromise({ try: () => provider.forceFlush(), catch: describeFailure }).pipe(
            Effect.zipRight(Effect.tryPromise({ try: () => provider.shutdown(), catch: describeFailure })),
            Effect.interruptible,
            Effect.timeoutFail({ duration: shutdownTimeout, onTimeout: () => `timed out after ${Duration.format(shutdownTimeout)}` }),
            Effect.catchAll((error) => Effect.logWarning("Failed to export the last spans").pipe(Effect.annotateLogs({ error })))
          )
      ))
  )

/** Builds the sampler an `OTEL_TRACES_SAMPLER` name stands for. */
export const makeSampler = (name: SamplerName, ratio: number): Sampler => {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler()
    case "always_off":
      return new AlwaysOffSampler()
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio)
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

/**
 * Installs the OTLP tracer for `settings`, or leaves Effect's default tracer (which exports
 * nothing) when no endpoint is set. Closing the layer flushes the spans still buffered, waiting
 * at most 3 seconds.
 *
 * NOTE: the exporter also reads the `OTEL_EXPORTER_OTLP_*` variables of `process.env` itself. The
 * URL and headers passed here take precedence, so the two agree unless a test provides settings
 * that differ from the process environment.
 */
export const tracingLayer = (settings: TracingSettings): Layer.Layer<never> =>
  Option.match(settings.tracesUrl, {
    onNone: () => Layer.empty,
    onSome: (url) =>
      Layer.unwrapEffect(Effect.gen(function*() {
        const exporter = new OTLPTraceExporter({ url, headers: Redacted.value(settings.headers) })
        const provider = tracerProvider(new BatchSpanProcessor(exporter), makeSampler(settings.sampler, settings.samplerRatio))
        const resource = OtelResource.layer({
          serviceName: settings.serviceName,
          serviceVersion,
          attributes: settings.resourceAttributes
        })
        yield* Effect.logInfo("Exporting traces over OTLP/HTTP").pipe(
          Effect.annotateLogs({ endpoint: url, serviceName: settings.serviceName, sampler: settings.sampler })
        )
        // The diagnostics are installed first and removed last, so they cover the provider's whole life.
        return Layer.merge(
          OtelTracer.layer.pipe(Layer.provide(provider), Layer.provide(resource), Layer.discard),
          Layer.succeed(TracingEnabled, true)
        ).pipe(Layer.provide(Layer.scopedDiscard(routeDiagnostics)))
      }))
  })

/** The tracer from the `OTEL_*` variables; `defaultServiceName` applies when `OTEL_SERVICE_NAME` is unset. */
export const TracingLive = (defaultServiceName: string) =>
  Layer.unwrapEffect(Effect.map(tracingConfig(defaultServiceName), tracingLayer))
