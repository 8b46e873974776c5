import { Cause, Config, Context, Effect, FiberRef, FiberRefs, HashMap, Layer, Logger, LogLevel, Option, Tracer } from "effect"
import { choiceSetting } from "./config/ConfigValues.ts"
import { configuredSecrets, makeRedactor } from "./Redaction.ts"
import { TracingEnabled } from "./telemetry/TraceContext.ts"

const levels = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
} as const

/** Settings of the process logger: `LOG_LEVEL` (default info) and `LOG_FORMAT` (`logfmt`, `json` or `pretty`). */
export const loggingConfig = Config.all({
  level: choiceSetting("LOG_LEVEL", Object.keys(levels) as [keyof typeof levels, ...Array<keyof typeof levels>]).pipe(
    Config.withDefault("info" as const)
  ),
  format: choiceSetting("LOG_FORMAT", ["logfmt", "json", "pretty"]).pipe(Config.withDefault("logfmt" as const))
})

/** Depth to which objects in messages and annotations are searched for secrets. */
const maxRedactionDepth = 5

/** Returns a copy of `error` with its message and stack redacted, or `error` itself when they contain no secret. */
const redactError = (redact: (text: string) => string, error: Error): Error => {
  const message = redact(error.message)
  const stack = error.stack === undefined ? undefined : redact(error.stack)
  if (message === error.message && stack === error.stack) return error
  const copy = new Error(message)
  copy.name = error.name
  if (stack !== undefined) copy.stack = stack
  return copy
}

const redactValue = (redact: (text: string) => string, value: unknown, depth = 0): unknown => {
  if (typeof value === "string") return redact(value)
  if (depth >= maxRedactionDepth || value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return value.map((item) => redactValue(redact, item, depth + 1))
  if (value instanceof Error) return redactError(redact, value)
  if (Object.getPrototypeOf(value) !== Object.prototype) return value
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(redact, item, depth + 1)]))
}

/**
 * Removes secrets from a log entry: its message, its annotations, and the rendering of its cause.
 * A cause whose rendering contained a secret is replaced by an annotation with the redacted text.
 */
const redactEntry = (redact: (text: string) => string) => <M>(options: Logger.Logger.Options<M>): Logger.Logger.Options<M> => {
  let annotations = HashMap.map(options.annotations, (value) => redactValue(redact, value))
  let cause = options.cause
  if (!Cause.isEmpty(cause)) {
    const rendered = Cause.pretty(cause, { renderErrorCause: true })
    const redacted = redact(rendered)
    if (redacted !== rendered) {
      annotations = HashMap.set(annotations, "cause", redacted)
      cause = Cause.empty
    }
  }
  return { ...options, message: redactValue(redact, options.message) as M, annotations, cause }
}

/** Adds `traceId` and `spanId` of the current span to a log entry while spans are exported. */
const withTraceIds = <M>(options: Logger.Logger.Options<M>): Logger.Logger.Options<M> => {
  const context = FiberRefs.getOrDefault(options.context, FiberRef.currentContext)
  if (!Context.get(context, TracingEnabled)) return options
  const span = Context.getOption(context, Tracer.ParentSpan)
  if (Option.isNone(span)) return options
  const annotations = HashMap.set(HashMap.set(options.annotations, "traceId", span.value.traceId), "spanId", span.value.spanId)
  return { ...options, annotations }
}

/**
 * Replaces the default logger with the configured format and minimum level. Every entry passes
 * through the redactor first, so the passwords of the configured database URLs, the Kafka SASL
 * password and the OTLP header values never reach the output, nor does any URL's password.
 */
export const LoggingLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    // Invalid settings fall back to the defaults here, because each command checks all its
    // settings, these two included, and reports every invalid one in one message.
    const { format, level } = yield* Effect.orElseSucceed(loggingConfig, () => ({ format: "logfmt" as const, level: "info" as const }))
    const redact = makeRedactor(yield* configuredSecrets)
    const base = format === "json"
      ? Logger.withConsoleLog(Logger.jsonLogger)
      : format === "pretty"
      ? Logger.prettyLogger()
      : Logger.withConsoleLog(Logger.logfmtLogger)
    const logger = base.pipe(Logger.mapInputOptions(redactEntry(redact)), Logger.mapInputOptions(withTraceIds))
    return Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(levels[level]))
  })
)
