/**
 * Trace export over OTLP/HTTP: the OpenTelemetry tracer provider behind Effect's spans, so every
 * `Effect.withSpan`, `Effect.fn` and `@effect/sql` statement span reaches a collector such as
 * Jaeger. The exporter posts OTLP JSON (`@opentelemetry/exporter-trace-otlp-http` 0.223).
 *
 * @module
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
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
import { Effect, Layer, Option, Redacted } from "effect"
import { TracingEnabled } from "./TraceContext.ts"
import { type SamplerName, tracingConfig, type TracingSettings } from "./TracingConfig.ts"

/** Version reported as `service.version`. */
const serviceVersion = "0.1.0"

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
        const provider = NodeSdk.layerTracerProvider(new BatchSpanProcessor(exporter), {
          sampler: makeSampler(settings.sampler, settings.samplerRatio)
        })
        const resource = OtelResource.layer({
          serviceName: settings.serviceName,
          serviceVersion,
          attributes: settings.resourceAttributes
        })
        yield* Effect.logInfo("Exporting traces over OTLP/HTTP").pipe(
          Effect.annotateLogs({ endpoint: url, serviceName: settings.serviceName, sampler: settings.sampler })
        )
        return Layer.merge(
          OtelTracer.layer.pipe(Layer.provide(provider), Layer.provide(resource), Layer.discard),
          Layer.succeed(TracingEnabled, true)
        )
      }))
  })

/** The tracer from the `OTEL_*` variables; `defaultServiceName` applies when `OTEL_SERVICE_NAME` is unset. */
export const TracingLive = (defaultServiceName: string) =>
  Layer.unwrapEffect(Effect.map(tracingConfig(defaultServiceName), tracingLayer))
