import { it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Fiber, Layer, Ref, TestClock } from "effect"
import { describe, expect } from "vitest"
import { consumerCheck, progressCheck } from "../../../src/ingest/IngestHealth.ts"
import { ConsumerProgress } from "../../../src/runtime/telemetry/ConsumerProgress.ts"
import { down, HealthRegistry, up } from "../../../src/runtime/telemetry/Health.ts"

const registryLayer = HealthRegistry.Default.pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HEALTH_CHECK_TIMEOUT_MS", "500"]]))))
)

/** Waits out the registry's one-second reuse of a result. */
const nextProbe = TestClock.adjust(Duration.millis(1_001))

describe("health registry", () => {
  it.scoped("flips readiness with a probe", () =>
    Effect.gen(function*() {
      const registry = yield* HealthRegistry
      const reachable = yield* Ref.make(true)
      yield* registry.register(
        "test.database",
        Effect.map(Ref.get(reachable), (ok) => ok ? up({ mode: "server" }) : down("connection refused"))
      )
      yield* registry.register("test.other", Effect.succeed(up()))

      const first = yield* registry.readiness
      expect(first.status).toBe("ready")
      expect(first.checks["test.database"]?.status).toBe("up")

      yield* Ref.set(reachable, false)
      yield* nextProbe
      const second = yield* registry.readiness
      expect(second.status).toBe("not ready")
      expect(second.checks["test.database"]?.status).toBe("down")
      expect(second.checks["test.database"]?.error).toBe("connection refused")
      expect(second.checks["test.other"]?.status).toBe("up")

      yield* Ref.set(reachable, true)
      yield* nextProbe
      expect((yield* registry.readiness).status).toBe("ready")
    }).pipe(Effect.provide(registryLayer)))

  it.scoped("fails a check that times out or throws", () =>
    Effect.gen(function*() {
      const registry = yield* HealthRegistry
      yield* registry.register("test.slow", Effect.as(Effect.never, up()))
      yield* registry.register("test.failing", Effect.fail(new Error("broker unreachable")))
      const probe = yield* Effect.fork(registry.readiness)
      yield* TestClock.adjust(Duration.millis(600))
      const report = yield* Fiber.join(probe)
      expect(report.status).toBe("not ready")
      expect(report.checks["test.slow"]?.error).toBe("timed out after 500 ms")
      expect(report.checks["test.failing"]?.error).toBe("broker unreachable")
    }).pipe(Effect.provide(registryLayer)))

  it.scoped("drops a check when its scope closes", () =>
    Effect.gen(function*() {
      const registry = yield* HealthRegistry
      yield* Effect.scoped(registry.register("test.gone", Effect.succeed(down("never"))))
      const report = yield* registry.readiness
      expect(report.checks).toEqual({})
      expect(report.status).toBe("not ready")
    }).pipe(Effect.provide(registryLayer)))
})

describe("ingest progress check", () => {
  const stallMillis = 10_000

  it.effect("reports a partition with lag and no commit as stalled", () =>
    Effect.gen(function*() {
      const progress = yield* ConsumerProgress
      yield* progress.assigned("member-1", { readings: [0, 1] })
      expect((yield* progressCheck(progress, stallMillis)).status).toBe("up")

      yield* progress.fetched("readings", 0, "100", "150")
      yield* TestClock.adjust(Duration.millis(stallMillis - 1))
      expect((yield* progressCheck(progress, stallMillis)).status).toBe("up")

      yield* TestClock.adjust(Duration.millis(2))
      const stalled = yield* progressCheck(progress, stallMillis)
      expect(stalled.status).toBe("down")
      expect(stalled.error).toBe(`no commit for over ${stallMillis} ms on readings[0] (lag 50)`)

      yield* progress.committed("readings", 0, "120")
      const resumed = yield* progressCheck(progress, stallMillis)
      expect(resumed.status).toBe("up")
      expect(resumed.details).toEqual({ lag: 30, partitions: 2 })
    }).pipe(Effect.provide(ConsumerProgress.Default)))

  it.effect("never stalls a partition without lag", () =>
    Effect.gen(function*() {
      const progress = yield* ConsumerProgress
      yield* progress.assigned("member-1", { readings: [0] })
      yield* progress.fetched("readings", 0, "0", "10")
      yield* progress.committed("readings", 0, "10")
      yield* TestClock.adjust(Duration.hours(1))
      expect((yield* progressCheck(progress, stallMillis)).status).toBe("up")

      // New records after an idle hour start the clock afresh.
      yield* progress.fetched("readings", 0, "10", "20")
      yield* TestClock.adjust(Duration.millis(stallMillis / 2))
      expect((yield* progressCheck(progress, stallMillis)).status).toBe("up")
    }).pipe(Effect.provide(ConsumerProgress.Default)))

  it.effect("forgets partitions that moved to another member", () =>
    Effect.gen(function*() {
      const progress = yield* ConsumerProgress
      yield* progress.assigned("member-1", { readings: [0, 1] })
      yield* progress.fetched("readings", 1, "0", "500")
      yield* progress.assigned("member-1", { readings: [0] })
      yield* TestClock.adjust(Duration.millis(stallMillis * 2))
      expect((yield* progressCheck(progress, stallMillis)).status).toBe("up")
      expect((yield* progress.lags).map((entry) => entry.partition)).toEqual([0])
    }).pipe(Effect.provide(ConsumerProgress.Default)))

  it.effect("follows the consumer's membership", () =>
    Effect.gen(function*() {
      const progress = yield* ConsumerProgress
      expect((yield* consumerCheck(progress)).error).toBe("joining the consumer group")
      yield* progress.assigned("member-1", { readings: [0] })
      expect((yield* consumerCheck(progress)).status).toBe("up")
      yield* progress.crashed(true, "KafkaJSConnectionError: Connection timeout")
      const restarting = yield* consumerCheck(progress)
      expect(restarting.status).toBe("down")
      expect(restarting.error).toContain("Connection timeout")
      yield* progress.assigned("member-2", { readings: [0] })
      expect((yield* consumerCheck(progress)).details).toEqual({ memberId: "member-2" })
    }).pipe(Effect.provide(ConsumerProgress.Default)))
})
