/**
 * Readiness checks of the process. Each side registers the checks it depends on (the database,
 * Kafka, the consumer's progress) for as long as its layer runs. `/health/ready` runs them all,
 * and the process is ready when every check passes. With no check registered it is not ready.
 *
 * @module
 */
import { Cause, Config, Duration, Effect, Option } from "effect"
import { integerSetting } from "../config/ConfigValues.ts"

/** Outcome of one check: `up` or `down`, with details for the JSON body. */
export interface CheckResult {
  readonly status: "up" | "down"
  /** Reason of the failure, present when `status` is `down`. */
  readonly error?: string | undefined
  readonly details?: Readonly<Record<string, unknown>> | undefined
}

/** A check passes when it succeeds with `up`; a failure, a `down` result or a timeout fails it. */
export type HealthCheck = Effect.Effect<CheckResult, unknown>

/** Body of `/health/ready`. */
export interface ReadinessReport {
  readonly status: "ready" | "not ready"
  readonly checks: Readonly<Record<string, CheckResult & { readonly durationMs: number }>>
}

/** Settings of the checks: `HEALTH_CHECK_TIMEOUT_MS`, the time one check may take. */
export const healthConfig = Config.all({
  checkTimeoutMillis: integerSetting("HEALTH_CHECK_TIMEOUT_MS", { min: 1, unit: "milliseconds" }).pipe(
    Config.withDefault(2_000)
  )
})

/** Returns a passing result. */
export const up = (details?: Readonly<Record<string, unknown>>): CheckResult => ({ status: "up", details })

/** Returns a failing result with its reason. */
export const down = (error: string, details?: Readonly<Record<string, unknown>>): CheckResult => ({
  status: "down",
  error,
  details
})

const describeFailure = (error: unknown): string => {
  if (error instanceof Error || (typeof error === "object" && error !== null && "message" in error)) {
    const message = String((error as { message: unknown }).message)
    const cause = (error as { cause?: { message?: unknown } }).cause
    return typeof cause?.message === "string" && cause.message !== message ? `${message}: ${cause.message}` : message
  }
  return String(error)
}

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return describeFailure(failure.value)
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) return describeFailure(defect.value)
  return Cause.isInterrupted(cause) ? "interrupted" : "failed"
}

/** Registered readiness checks, shared by every side of the process. */
export class HealthRegistry extends Effect.Service<HealthRegistry>()("sensor-logger/HealthRegistry", {
  effect: Effect.gen(function*() {
    const { checkTimeoutMillis } = yield* healthConfig
    const checks = new Map<string, HealthCheck>()
    const lastStatus = new Map<string, CheckResult["status"]>()

    const runCheck = (name: string, check: HealthCheck) =>
      Effect.gen(function*() {
        const started = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const result = yield* check.pipe(
          // A finalizer or a blocked statement must not hold the probe past its timeout.
          Effect.interruptible,
          Effect.timeoutFail({
            duration: Duration.millis(checkTimeoutMillis),
            onTimeout: () => new Error(`timed out after ${checkTimeoutMillis} ms`)
          }),
          Effect.catchAllCause((cause) => Effect.succeed(down(describeCause(cause))))
        )
        const durationMs = (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) - started
        // Logged on a change only, so a probe every few seconds does not repeat the same line.
        if (lastStatus.get(name) !== result.status) {
          const first = !lastStatus.has(name)
          lastStatus.set(name, result.status)
          if (result.status === "down") {
            yield* Effect.logWarning("Readiness check failed").pipe(Effect.annotateLogs({ check: name, error: result.error ?? "" }))
          } else if (!first) {
            yield* Effect.logInfo("Readiness check passes again").pipe(Effect.annotateLogs({ check: name }))
          }
        }
        return { ...result, durationMs }
      })

    const runAll = Effect.gen(function*() {
      const entries = [...checks.entries()].sort(([a], [b]) => a.localeCompare(b))
      const results = yield* Effect.forEach(entries, ([name, check]) => runCheck(name, check), { concurrency: "unbounded" })
      const report: Record<string, CheckResult & { readonly durationMs: number }> = {}
      entries.forEach(([name], index) => {
        report[name] = results[index]!
      })
      // No check is registered while the sides are still starting or already stopping, and the
      // process must not count as ready then.
      const ready = results.length > 0 && results.every((result) => result.status === "up")
      return { status: ready ? "ready" : "not ready", checks: report } satisfies ReadinessReport
    })
    // Requests within a second share one run, so concurrent probes open no extra connections.
    const readiness = yield* Effect.cachedWithTTL(runAll, Duration.seconds(1))

    return {
      /** Adds a check under `name` until the scope closes. */
      register: (name: string, check: HealthCheck) =>
        Effect.acquireRelease(
          Effect.sync(() => void checks.set(name, check)),
          () => Effect.sync(() => void checks.delete(name))
        ),
      /**
       * Runs every check at once and reports the process ready when at least one is registered
       * and all pass. A result is reused for 1 second.
       */
      readiness
    } as const
  })
}) {}
