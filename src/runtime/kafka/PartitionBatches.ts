import { Deferred, Effect, Exit, Queue, Runtime, type Scope, Stream } from "effect"
import type { Consumer, EachBatchPayload, KafkaMessage } from "kafkajs"
import { ConsumerProgress } from "../telemetry/ConsumerProgress.ts"
import { KafkaClient } from "./KafkaClient.ts"
import { KafkaError } from "./KafkaError.ts"

/** The records of one partition that one fetch returned, with the calls that act on that partition. */
export interface PartitionBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
  /** Offset of the first record in `messages`. */
  readonly firstOffset: string
  /** Offset of the last record in `messages`. */
  readonly lastOffset: string
  /** The partition's high watermark when the batch was fetched: the offset after its newest record. */
  readonly highWatermark: string
  /** Keeps the group membership alive during a long write or retry. */
  readonly heartbeat: Effect.Effect<void, KafkaError>
  /** Commits the offset after `lastOffset`, so a restarted consumer resumes behind this batch. */
  readonly commit: Effect.Effect<void, KafkaError>
  /** True once a rebalance has moved the partition elsewhere, after which a commit has no effect. */
  readonly isStale: () => boolean
}

/** Options of the consumer group behind `processPartitionBatches`. */
export interface ConsumerOptions {
  readonly groupId: string
  readonly topics: ReadonlyArray<string>
  /** Partitions handled at once. Each partition has at most one batch in flight. */
  readonly concurrency: number
  /** Maximum time the broker waits to fill a fetch (kafkajs `maxWaitTimeInMs`), the linger of a batch. */
  readonly maxWaitMillis: number
  /** Bytes the broker waits for before it returns a fetch early (kafkajs `minBytes`). */
  readonly minBytes: number
  /** Upper bound on the bytes of one partition's batch (kafkajs `maxBytesPerPartition`). */
  readonly maxBytesPerPartition: number
  readonly sessionTimeoutMillis: number
}

interface PendingBatch {
  readonly batch: PartitionBatch
  readonly done: Deferred.Deferred<void, unknown>
}

const toPartitionBatch = (consumer: Consumer, payload: EachBatchPayload): PartitionBatch => {
  const { batch } = payload
  const lastOffset = batch.lastOffset()
  return {
    topic: batch.topic,
    partition: batch.partition,
    messages: batch.messages,
    firstOffset: batch.firstOffset() ?? lastOffset,
    lastOffset,
    highWatermark: batch.highWatermark,
    heartbeat: Effect.tryPromise({
      try: () => payload.heartbeat(),
      catch: (cause) => new KafkaError({ operation: "heartbeat", cause })
    }),
    commit: Effect.tryPromise({
      try: () =>
        consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(lastOffset) + 1n).toString() }
        ]),
      catch: (cause) => new KafkaError({ operation: `commit ${batch.topic}[${batch.partition}]@${lastOffset}`, cause })
    }),
    isStale: () => payload.isStale()
  }
}

/**
 * Runs a consumer group over `options.topics` and feeds every fetched partition batch through
 * `handle`, as a backpressured stream. kafkajs does not fetch a partition again until `handle`
 * has finished with its previous batch, so at most `concurrency` batches are in memory.
 *
 * Offsets are never committed automatically: `handle` calls `batch.commit` after its write. When
 * `handle` fails, the batch is not acknowledged, kafkajs restarts the consumer, and the records
 * are fetched again from the last committed offset.
 *
 * The effect returns once the consumer runs, with an effect that fails when the consumer has
 * stopped for good (kafkajs gave up restarting it) and never completes otherwise. Closing the
 * scope stops fetching, waits for the batches in flight to finish (bounded by `shutdownTimeout`)
 * and leaves the group.
 */
export const processPartitionBatches = <E, R>(
  options: ConsumerOptions,
  handle: (batch: PartitionBatch) => Effect.Effect<void, E, R>,
  shutdownTimeout: `${number} seconds` = "30 seconds"
): Effect.Effect<Effect.Effect<never, KafkaError>, KafkaError, KafkaClient | ConsumerProgress | Scope.Scope | R> =>
  Effect.gen(function*() {
    const { kafka } = yield* KafkaClient
    const progress = yield* ConsumerProgress
    const runtime = yield* Effect.runtime<never>()
    const pending = yield* Queue.bounded<PendingBatch>(options.concurrency)
    const stopped = yield* Deferred.make<never, KafkaError>()

    // Forked before the consumer is acquired, so the scope stops the consumer first (which waits
    // for the batches in flight) and only then interrupts this fiber.
    yield* Stream.fromQueue(pending).pipe(
      Stream.mapEffect(
        ({ batch, done }) =>
          // onExit also runs when the stage is interrupted at shutdown, so the waiting eachBatch
          // call is always released (with a failure, which leaves its offsets uncommitted).
          handle(batch).pipe(
            Effect.onExit((exit) => Deferred.done(done, Exit.mapError(exit, (error) => error as unknown))),
            Effect.ignore
          ),
        { concurrency: options.concurrency, unordered: true }
      ),
      Stream.runDrain,
      Effect.forkScoped
    )

    const consumer = kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: options.maxWaitMillis,
      minBytes: options.minBytes,
      maxBytesPerPartition: options.maxBytesPerPartition,
      sessionTimeout: options.sessionTimeoutMillis,
      allowAutoTopicCreation: false
    })
    consumer.on(consumer.events.CRASH, (event) => {
      const log = event.payload.restart
        ? Effect.logWarning("Kafka consumer failed and restarts", event.payload.error)
        : Effect.logError("Kafka consumer crashed and stopped", event.payload.error)
      Runtime.runFork(runtime)(
        log.pipe(
          Effect.annotateLogs({ groupId: event.payload.groupId, restart: event.payload.restart }),
          Effect.zipRight(progress.crashed(event.payload.restart, String(event.payload.error))),
          Effect.zipRight(
            event.payload.restart
              ? Effect.void
              : Deferred.fail(stopped, new KafkaError({ operation: `consume as ${options.groupId}`, cause: event.payload.error }))
          )
        )
      )
    })
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      Runtime.runFork(runtime)(
        Effect.logInfo("Joined consumer group").pipe(
          Effect.annotateLogs({
            groupId: event.payload.groupId,
            memberId: event.payload.memberId,
            assignment: JSON.stringify(event.payload.memberAssignment)
          })
        ).pipe(Effect.zipRight(progress.assigned(event.payload.memberId, event.payload.memberAssignment)))
      )
    })

    const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
      if (payload.batch.isEmpty()) return
      const batch = toPartitionBatch(consumer, payload)
      await Runtime.runPromise(runtime)(
        Effect.gen(function*() {
          const done = yield* Deferred.make<void, unknown>()
          yield* Queue.offer(pending, { batch, done })
          yield* Deferred.await(done)
        })
      )
      payload.resolveOffset(batch.lastOffset)
    }

    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await consumer.connect()
          await consumer.subscribe({ topics: [...options.topics], fromBeginning: true })
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: options.concurrency,
            eachBatch
          })
        },
        catch: (cause) => new KafkaError({ operation: `consume ${options.topics.join(", ")}`, cause })
      }),
      () =>
        // Finalizers are uninterruptible, so without `interruptible` the timeout could not cut
        // short a disconnect that waits for a batch stuck in retries.
        Effect.promise(() => consumer.disconnect()).pipe(
          Effect.interruptible,
          Effect.timeout(shutdownTimeout),
          Effect.tap(() => Effect.logInfo("Kafka consumer left the group").pipe(Effect.annotateLogs({ groupId: options.groupId }))),
          Effect.catchAllCause((cause) => Effect.logWarning("Kafka consumer did not stop cleanly", cause))
        )
    )
    return Deferred.await(stopped)
  })
