/**
 * Readiness of the ingest job: the database and Kafka are reachable, the consumer is a member of
 * its group, and no assigned partition with lag has been without progress for longer than
 * `INGEST_STALL_TIMEOUT_MS`.
 *
 * @module
 */
import { Clock, Config, Effect, Layer } from "effect"
import { integerSetting } from "../runtime/config/ConfigValues.ts"
import { ConsumerProgress, stalledPartitions } from "../runtime/telemetry/ConsumerProgress.ts"
import { down, HealthRegistry, up } from "../runtime/telemetry/Health.ts"
import { databaseProbe, kafkaProbe } from "../runtime/telemetry/Probes.ts"

/** `INGEST_STALL_TIMEOUT_MS`: how long a partition with lag may go without a commit before the job is not ready. */
export const stallTimeoutConfig = integerSetting("INGEST_STALL_TIMEOUT_MS", { min: 1, unit: "milliseconds" }).pipe(
  Config.withDefault(60_000)
)

/** Names of the ingest job's checks in `/health/ready`. */
export const ingestCheckNames = {
  database: "ingest.database",
  kafka: "ingest.kafka",
  consumer: "ingest.consumer",
  progress: "ingest.progress"
} as const

/** Passes while the consumer is a member of its group. */
export const consumerCheck = (progress: ConsumerProgress) =>
  Effect.map(progress.membership, (membership) => {
    switch (membership._tag) {
      case "Member":
        return up({ memberId: membership.memberId })
      case "Joining":
        return down("joining the consumer group")
      case "Restarting":
        return down(`the consumer failed and restarts: ${membership.reason}`)
      case "Stopped":
        return down(`the consumer stopped: ${membership.reason}`)
    }
  })

/** Passes unless a partition with lag has had no commit for longer than `stallMillis`. */
export const progressCheck = (progress: ConsumerProgress, stallMillis: number) =>
  Effect.gen(function*() {
    const lags = yield* progress.lags
    const now = yield* Clock.currentTimeMillis
    const stalled = stalledPartitions(lags, now, stallMillis)
    const lag = lags.reduce((total, entry) => total + entry.lag, 0)
    if (stalled.length === 0) return up({ lag, partitions: lags.length })
    const names = stalled.map((entry) => `${entry.topic}[${entry.partition}] (lag ${entry.lag})`).join(", ")
    return down(`no commit for over ${stallMillis} ms on ${names}`, {
      lag,
      stalled: stalled.map((entry) => ({
        topic: entry.topic,
        partition: entry.partition,
        lag: entry.lag,
        millisSinceProgress: now - entry.lastProgressMillis
      }))
    })
  })

/** Registers the ingest checks with the process's health registry while the layer runs. */
export const IngestHealthChecks = Layer.scopedDiscard(
  Effect.gen(function*() {
    const registry = yield* HealthRegistry
    const progress = yield* ConsumerProgress
    const stallMillis = yield* stallTimeoutConfig
    yield* registry.register(ingestCheckNames.database, yield* databaseProbe)
    yield* registry.register(ingestCheckNames.kafka, yield* kafkaProbe)
    yield* registry.register(ingestCheckNames.consumer, consumerCheck(progress))
    yield* registry.register(ingestCheckNames.progress, progressCheck(progress, stallMillis))
  })
)
