/**
 * Routes the OpenTelemetry SDK's own diagnostics (`diag`), such as a failed span export, into the
 * process log. The SDK reports every failed export, so while a collector is down the same line
 * would repeat every few seconds. Lines are therefore limited to one a minute, each with the
 * number of lines left out since the previous one.
 *
 * @module
 */
import { diag, type DiagLogger, DiagLogLevel } from "@opentelemetry/api"
import { Effect, Runtime } from "effect"

/** Minimum time between two logged diagnostics, in milliseconds. */
export const diagnosticIntervalMillis = 60_000

const describeArgument = (value: unknown): string => {
  if (value instanceof Error) return value.message
  if (typeof value === "object" && value !== null && "message" in value) return String((value as { message: unknown }).message)
  return String(value)
}

/**
 * Installs the process-wide OpenTelemetry diagnostic logger for the scope's lifetime, logging
 * SDK errors and warnings at warning level.
 */
export const routeDiagnostics = Effect.gen(function*() {
  const runtime = yield* Effect.runtime<never>()
  let lastLogged = Number.NEGATIVE_INFINITY
  let suppressed = 0
  const log = (level: "error" | "warn") => (message: string, ...args: Array<unknown>) => {
    const now = Date.now()
    if (now - lastLogged < diagnosticIntervalMillis) {
      suppressed += 1
      return
    }
    lastLogged = now
    const annotations = { otel: level, detail: args.map(describeArgument).join("; "), suppressed }
    suppressed = 0
    Runtime.runFork(runtime)(Effect.logWarning(`OpenTelemetry: ${message}`).pipe(Effect.annotateLogs(annotations)))
  }
  const ignore = () => {}
  const logger: DiagLogger = { error: log("error"), warn: log("warn"), info: ignore, debug: ignore, verbose: ignore }
  yield* Effect.acquireRelease(
    Effect.sync(() => diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true })),
    () => Effect.sync(() => diag.disable())
  )
})
