import { Context, Effect, Layer } from "effect"
import { KafkaAdmin } from "../runtime/kafka/KafkaAdmin.ts"
import type { KafkaError } from "../runtime/kafka/KafkaError.ts"
import { type PartitionStatus, runPartitionConsumer } from "../runtime/kafka/PartitionConsumer.ts"
import { makeBatchFlush } from "./BatchFlush.ts"
import type { IngestConfig } from "./IngestConfig.ts"
import { runMigrations } from "./Migrations.ts"
import { runPartitionWorker } from "./PartitionWorker.ts"
import { StorageMaintenance } from "./StorageMaintenance.ts"

/**
 * The running write side. `stopped` fails when the consumer has stopped for good, so an entry
 * point can exit with an error and let its supervisor restart it. It never succeeds.
 * `partitions` shows the records and bytes each assigned partition holds.
 */
export class IngestJob extends Context.Tag("sensor-logger/IngestJob")<
  IngestJob,
  {
    readonly stopped: Effect.Effect<never, KafkaError>
    readonly partitions: Effect.Effect<ReadonlyArray<PartitionStatus>>
  }
>() {
  /**
   * The write side as a scoped layer: applies migrations and storage policies, creates the input
   * and dead-letter topics when missing, then consumes readings and sensors with one worker per
   * assigned partition until the scope closes. Closing it stops fetching, lets every partition
   * write and commit the records it has taken (at most `shutdownTimeoutMillis`), and leaves the
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
        const flush = yield* makeBatchFlush(config)
        const workerOptions = {
          topics: { readings: config.readingsTopic, sensors: config.sensorsTopic },
          timestampRange: config.timestampRange,
          limits: { maxRows: config.batchMaxRows, maxBytes: config.batchMaxBytes, lingerMillis: config.lingerMillis },
          flush
        }
        const consumer = yield* runPartitionConsumer(
          {
            groupId: config.groupId,
            topics,
            fetchMaxWaitMillis: config.fetchMaxWaitMillis,
            fetchMinBytes: config.fetchMinBytes,
            fetchMaxBytesPerPartition: config.fetchMaxBytes,
            sessionTimeoutMillis: 30_000,
            inFlight: { maxRecords: config.partitionMaxRecords, maxBytes: config.partitionMaxBytes },
            drainTimeoutMillis: config.shutdownTimeoutMillis
          },
          (partition) => runPartitionWorker(partition, workerOptions)
        )
        yield* Effect.logInfo("Ingest job started").pipe(
          Effect.annotateLogs({ groupId: config.groupId, topics: topics.join(", "), onConflict: config.onConflict })
        )
        return { stopped: consumer.stopped, partitions: consumer.partitions }
      }).pipe(Effect.annotateLogs({ service: "ingest" }))
    )
}
