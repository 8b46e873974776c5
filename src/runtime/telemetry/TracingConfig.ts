/**
 * Trace export settings, read from the standard OpenTelemetry SDK variables. Tracing is off
 * unless an OTLP endpoint is set, and `OTEL_SDK_DISABLED=true` turns it off regardless.
 *
 * @module
 */
import { Config, ConfigError, Either, Option, Redacted } from "effect"
import { booleanSetting, choiceSetting } from "../config/ConfigValues.ts"

/** The samplers of the OpenTelemetry specification that this build provides. */
export const samplerNames = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio"
] as const
export type SamplerName = (typeof samplerNames)[number]

/** Resolved trace export settings. */
export interface TracingSettings {
  /** Full URL that spans are posted to, or none when tracing is off. */
  readonly tracesUrl: Option.Option<string>
  /** Extra HTTP headers of every export request, such as an API key. */
  readonly headers: Redacted.Redacted<Record<string, string>>
  /** `service.name` of the resource: `OTEL_SERVICE_NAME`, else the one in the attributes, else the entry point's name. */
  readonly serviceName: string
  /** Resource attributes from `OTEL_RESOURCE_ATTRIBUTES`. */
  readonly resourceAttributes: Record<string, string>
  readonly sampler: SamplerName
  /** Sampling probability of the ratio samplers, from 0 to 1. */
  readonly samplerRatio: number
}

const decodePercent = (name: string, text: string): Either.Either<string, ConfigError.ConfigError> => {
  try {
    return Either.right(decodeURIComponent(text))
  } catch {
    // The text is left out: it may be a header value such as an API key.
    return Either.left(ConfigError.InvalidData([name], "expected values in percent-encoding, with %XX for special characters"))
  }
}

/**
 * Parses `key=value,key=value` with percent-encoded values, the format of
 * `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`. Empty entries are skipped.
 */
export const parseKeyValueList = (name: string, text: string): Either.Either<Record<string, string>, ConfigError.ConfigError> => {
  const result: Record<string, string> = {}
  for (const entry of text.split(",")) {
    if (entry.trim() === "") continue
    const index = entry.indexOf("=")
    const key = index < 0 ? "" : entry.slice(0, index).trim()
    if (key === "") {
      return Either.left(ConfigError.InvalidData([name], "expected comma-separated key=value pairs"))
    }
    const value = decodePercent(name, entry.slice(index + 1).trim())
    if (Either.isLeft(value)) return Either.left(value.left)
    result[key] = value.right
  }
  return Either.right(result)
}

const httpUrl = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const trimmed = text.trim()
      try {
        const url = new URL(trimmed)
        if (url.protocol === "http:" || url.protocol === "https:") return Either.right(trimmed)
      } catch {
        // Reported below.
      }
      return Either.left(ConfigError.InvalidData([name], "expected an http:// or https:// URL, for example http://127.0.0.1:4318"))
    })
  )

/** Appends the traces path to a base endpoint, as the OTLP exporter specification does. */
export const tracesUrlFromBase = (base: string): string => `${base.replace(/\/+$/, "")}/v1/traces`

/**
 * Reads the tracing settings. `defaultServiceName` names the entry point, such as
 * `sensor-logger-ingest`.
 */
export const tracingConfig = (defaultServiceName: string): Config.Config<TracingSettings> =>
  Config.all({
    disabled: booleanSetting("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
    base: Config.option(httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT")),
    traces: Config.option(httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
    // The installed exporter (@opentelemetry/exporter-trace-otlp-http) posts JSON only.
    protocol: choiceSetting("OTEL_EXPORTER_OTLP_PROTOCOL", ["http/json"]).pipe(Config.withDefault("http/json" as const)),
    headers: Config.redacted("OTEL_EXPORTER_OTLP_HEADERS").pipe(
      Config.mapOrFail((value) => Either.map(parseKeyValueList("OTEL_EXPORTER_OTLP_HEADERS", Redacted.value(value)), Redacted.make)),
      Config.withDefault(Redacted.make<Record<string, string>>({}))
    ),
    serviceName: Config.option(
      Config.string("OTEL_SERVICE_NAME").pipe(
        Config.map((name) => name.trim()),
        Config.validate({ message: "expected a non-empty service name", validation: (name) => name !== "" })
      )
    ),
    resourceAttributes: Config.string("OTEL_RESOURCE_ATTRIBUTES").pipe(
      Config.mapOrFail((text) => parseKeyValueList("OTEL_RESOURCE_ATTRIBUTES", text)),
      Config.withDefault({} as Record<string, string>)
    ),
    sampler: choiceSetting("OTEL_TRACES_SAMPLER", samplerNames).pipe(Config.withDefault("parentbased_always_on" as const)),
    samplerArg: Config.option(
      Config.string("OTEL_TRACES_SAMPLER_ARG").pipe(
        Config.mapOrFail((text) => {
          const ratio = Number(text.trim())
          return text.trim() !== "" && ratio >= 0 && ratio <= 1
            ? Either.right(ratio)
            : Either.left(ConfigError.InvalidData(["OTEL_TRACES_SAMPLER_ARG"], "expected a sampling probability from 0 to 1"))
        })
      )
    )
  }).pipe(
    Config.map((settings): TracingSettings => {
      const endpoint = Option.orElse(settings.traces, () => Option.map(settings.base, tracesUrlFromBase))
      return {
        tracesUrl: settings.disabled ? Option.none() : endpoint,
        headers: settings.headers,
        // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES, as the OpenTelemetry SDK specification requires.
        serviceName: Option.getOrElse(
          settings.serviceName,
          () => settings.resourceAttributes["service.name"] ?? defaultServiceName
        ),
        resourceAttributes: settings.resourceAttributes,
        sampler: settings.sampler,
        samplerRatio: Option.getOrElse(settings.samplerArg, () => 1)
      }
    })
  )
