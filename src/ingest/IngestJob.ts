import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import { KafkaAdmin } from "../runtime/kafka/KafkaAdmin.ts"
import type { KafkaError } from "../runtime/kafka/KafkaError.ts"
import { KafkaProducer } from "../runtime/kafka/KafkaProducer.ts"
import { type PartitionBatch, processPartitionBatches } from "../runtime/kafka/PartitionBatches.ts"
import { toDeadLetterRecord } from "./DeadLetter.ts"
import { chunkByRows, decodeBatch } from "./DecodedBatch.ts"
import type { IngestConfig } from "./IngestConfig.ts"
import { IngestStats } from "./IngestStats.ts"
import { runMigrations } from "./Migrations.ts"
import { SensorDataWriter } from "./SensorDataWriter.ts"
import { StorageMaintenance } from "./StorageMaintenance.ts"

/**
 * Retries of a failed write or dead-letter send: exponential from 200 ms, jittered, capped at
 * 30 s a wait, with no limit on attempts. Nothing is committed meanwhile, so a database outage
 * delays readings but loses none. The batch heartbeats between attempts to keep its partitions.
 */
const retrySchedule = Schedule.exponential("200 millis").pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(30)))
)

/** Formats an error with its cause's message, so a `SqlError` shows the database's own message. */
const describeError = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const cause = error.cause as { message?: unknown; code?: unknown } | undefined
  if (typeof cause?.message !== "string") return error.message
  return typeof cause.code === "string"
    ? `${error.message}: ${cause.message} (SQLSTATE ${cause.code})`
    : `${error.message}: ${cause.message}`
}

/** Retries `effect` on `retrySchedule`, logging each failure and heartbeating, while `retryWhile` holds. */
const withRetries = <A, E extends { readonly message: string; readonly cause?: unknown }, R>(
  batch: PartitionBatch,
  step: string,
  effect: Effect.Effect<A, E, R>,
  retryWhile: () => boolean = () => true
) =>
  effect.pipe(
    Effect.tapError((error) =>
      Effect.logWarning(`${step} failed, retrying`).pipe(
        Effect.annotateLogs({ topic: batch.topic, partition: batch.partition, error: describeError(error) }),
        Effect.zipRight(Effect.ignore(batch.heartbeat))
      )
    ),
    Effect.retry({ schedule: retrySchedule, while: retryWhile })
  )

const makeBatchHandler = (config: IngestConfig) =>
  Effect.gen(function*() {
    const writer = yield* SensorDataWriter
    const producer = yield* KafkaProducer
    const stats = yield* IngestStats
    const topics = { readings: config.readingsTopic, sensors: config.sensorsTopic }

    return (batch: PartitionBatch) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const decoded = decodeBatch(batch, topics, config.timestampRange)
        let rows = 0
        const chunks = chunkByRows(decoded.readings, config.maxRows)
        if (chunks.length === 0 && decoded.sensors.length > 0) chunks.push([])
        for (const [index, chunk] of chunks.entries()) {
          const sensors = index === 0 ? decoded.sensors : []
          rows += yield* withRetries(batch, "Write", writer.write(chunk, sensors))
        }
        if (decoded.deadLetters.length > 0) {
          const deadLetterTopic = `${batch.topic}${config.deadLetterSuffix}`
          yield* withRetries(
            batch,
            "Dead-letter send",
            producer.send(deadLetterTopic, decoded.deadLetters.map(toDeadLetterRecord))
          )
          for (const letter of decoded.deadLetters) {
            yield* Effect.logWarning("Record sent to the dead-letter topic").pipe(
              Effect.annotateLogs({
                topic: batch.topic,
                partition: batch.partition,
                offset: letter.message.offset,
                deadLetterTopic,
                error: letter.errorTag,
                reason: letter.reason
              })
            )
          }
        }
        const reassigned = Effect.logInfo(
          "Partition was reassigned during the batch; its new owner resumes from the last commit"
        ).pipe(Effect.annotateLogs({ topic: batch.topic, partition: batch.partition, lastOffset: batch.lastOffset }))
        if (batch.isStale()) return yield* reassigned
        // A commit that fails because of a rebalance can never succeed, so retries stop once the
        // partition has moved. The new owner then fetches the records again and rewrites them.
        const committed = yield* withRetries(batch, "Commit", batch.commit, () => !batch.isStale()).pipe(
          Effect.as(true),
          Effect.catchAll((error) => batch.isStale() ? Effect.as(reassigned, false) : Effect.fail(error))
        )
        if (!committed) return
        yield* stats.record({
          records: batch.messages.length,
          readings: decoded.readings.length,
          rows,
          sensors: decoded.sensors.length,
          deadLetters: decoded.deadLetters.length,
          busyMillis: (yield* Clock.currentTimeMillis) - started
        })
        yield* Effect.annotateCurrentSpan({ readings: decoded.readings.length, rows, deadLetters: decoded.deadLetters.length })
      }).pipe(
        Effect.withSpan("IngestJob.batch", {
          attributes: {
            "messaging.destination.name": batch.topic,
            "messaging.destination.partition.id": batch.partition,
            "messaging.batch.message_count": batch.messages.length,
            "messaging.kafka.offset.last": batch.lastOffset
          }
        })
      )
  })

/**
 * The running write side. `stopped` fails when the consumer has stopped for good, so an entry
 * point can exit with an error and let its supervisor restart it. It never succeeds.
 */
export class IngestJob extends Context.Tag("sensor-logger/IngestJob")<
  IngestJob,
  { readonly stopped: Effect.Effect<never, KafkaError> }
>() {
  /**
   * The write side as a scoped layer: applies migrations and storage policies, creates the
   * input and dead-letter topics when missing, then consumes readings and sensors until the scope closes. Closing it
   * stops fetching, lets the batches in flight finish their write and commit, and leaves the
   * consumer group.
   */
  static readonly layer = (config: IngestConfig) =>
    Layer.scoped(
      IngestJob,
      Effect.gen(function*() {
        yield* runMigrations
        yield* (yield* StorageMaintenance).start
        const admin = yield* KafkaAdmin
        const topics = [config.readingsTopic, config.sensorsTopic]
        const deadLetterTopics = topics.map((topic) => `${topic}${config.deadLetterSuffix}`)
        yield* admin.ensureTopics([...topics, ...deadLetterTopics], config.topicPartitions)
        const handle = yield* makeBatchHandler(config)
        const stopped = yield* processPartitionBatches(
          {
            groupId: config.groupId,
            topics,
            concurrency: config.concurrency,
            maxWaitMillis: config.maxWaitMillis,
            minBytes: config.minBytes,
            maxBytesPerPartition: config.maxBatchBytes,
            sessionTimeoutMillis: 30_000
          },
          handle
        )
        yield* Effect.logInfo("Ingest job started").pipe(
          Effect.annotateLogs({ groupId: config.groupId, topics: topics.join(", ") })
        )
        return { stopped }
      }).pipe(Effect.annotateLogs({ service: "ingest" }))
    )
}
