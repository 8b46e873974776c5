import { ConfigProvider, Effect, Either, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { describeConfigError } from "../../../src/runtime/config/ConfigReport.ts"
import { tracingConfig, type TracingSettings } from "../../../src/runtime/telemetry/TracingConfig.ts"

/** Reads the settings from `variables`, or the message the process would print for them. */
const read = (variables: Record<string, string>): Either.Either<TracingSettings, string> => {
  const provider = ConfigProvider.fromMap(new Map(Object.entries(variables)))
  const program = Effect.gen(function*() {
    const result = yield* Effect.either(tracingConfig("sensor-logger-test"))
    if (Either.isRight(result)) return Either.right(result.right)
    return Either.left(yield* describeConfigError(result.left))
  })
  return Effect.runSync(Effect.withConfigProvider(program, provider))
}

const settings = (variables: Record<string, string>) => {
  const result = read(variables)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}

const error = (variables: Record<string, string>) => {
  const result = read(variables)
  if (Either.isRight(result)) throw new Error(`expected a configuration error for ${JSON.stringify(variables)}`)
  return result.left
}

describe("tracing configuration", () => {
  it("is off without an endpoint", () => {
    const result = settings({})
    expect(Option.isNone(result.tracesUrl)).toBe(true)
    expect(result.serviceName).toBe("sensor-logger-test")
    expect(result.sampler).toBe("parentbased_always_on")
  })

  it("appends the traces path to the base endpoint", () => {
    expect(settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" }).tracesUrl).toEqual(
      Option.some("http://127.0.0.1:4318/v1/traces")
    )
  })

  it("prefers the traces endpoint as given", () => {
    const result = settings({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/custom"
    })
    expect(result.tracesUrl).toEqual(Option.some("http://collector:4318/custom"))
  })

  it("is off when the SDK is disabled", () => {
    const result = settings({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "TRUE" })
    expect(Option.isNone(result.tracesUrl)).toBe(true)
  })

  it("decodes headers and resource attributes", () => {
    const result = settings({
      OTEL_EXPORTER_OTLP_HEADERS: "api-key=secret%20value, x-tenant=a",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,service.name=from-attributes"
    })
    expect(Redacted.value(result.headers)).toEqual({ "api-key": "secret value", "x-tenant": "a" })
    expect(result.resourceAttributes).toEqual({ "deployment.environment": "prod", "service.name": "from-attributes" })
    expect(result.serviceName).toBe("from-attributes")
    expect(settings({ OTEL_SERVICE_NAME: "explicit", OTEL_RESOURCE_ATTRIBUTES: "service.name=x" }).serviceName).toBe("explicit")
  })

  it("reads the sampler and its ratio", () => {
    const result = settings({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" })
    expect(result.sampler).toBe("parentbased_traceidratio")
    expect(result.samplerRatio).toBe(0.25)
  })

  it("rejects invalid values with the variable and value", () => {
    expect(error({ OTEL_EXPORTER_OTLP_ENDPOINT: "127.0.0.1:4318" })).toBe(
      `Invalid configuration: OTEL_EXPORTER_OTLP_ENDPOINT="127.0.0.1:4318" is invalid: expected an http:// or https:// URL, for example http://127.0.0.1:4318`
    )
    expect(error({ OTEL_TRACES_SAMPLER: "jaeger_remote" })).toContain(`OTEL_TRACES_SAMPLER="jaeger_remote" is invalid: expected one of always_on`)
    expect(error({ OTEL_TRACES_SAMPLER_ARG: "1.5" })).toContain(`OTEL_TRACES_SAMPLER_ARG="1.5" is invalid`)
    expect(error({ OTEL_SDK_DISABLED: "yes" })).toContain(`OTEL_SDK_DISABLED="yes" is invalid: expected true or false`)
    expect(error({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toContain(`expected one of http/json`)
    expect(error({ OTEL_RESOURCE_ATTRIBUTES: "novalue" })).toContain("expected comma-separated key=value pairs")
  })

  it("never shows the OTLP headers in an error", () => {
    const message = error({ OTEL_EXPORTER_OTLP_HEADERS: "api-key=%zz-secret" })
    expect(message).toContain("OTEL_EXPORTER_OTLP_HEADERS")
    expect(message).not.toContain("secret")
  })

  it("lists every problem in one message", () => {
    const message = error({ OTEL_TRACES_SAMPLER: "bogus", OTEL_SDK_DISABLED: "maybe" })
    expect(message.startsWith("Invalid configuration (2 problems):")).toBe(true)
    expect(message).toContain("OTEL_TRACES_SAMPLER")
    expect(message).toContain("OTEL_SDK_DISABLED")
  })
})
