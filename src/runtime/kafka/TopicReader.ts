import { Deferred, Duration, Effect, Runtime } from "effect"
import type { EachBatchPayload, KafkaMessage } from "kafkajs"
import { KafkaClient } from "./KafkaClient.ts"
import { KafkaError } from "./KafkaError.ts"

/** Options of `readTopicToEnd`. */
export interface TopicReadOptions {
  readonly topic: string
  /** Consumer group whose committed offsets mark where reading starts. */
  readonly groupId: string
  /** Commit the offset after each handled batch. Without it, the group's offsets stay as they were. */
  readonly commit: boolean
}

/** Records of one partition, in offset order, handed to the `handle` of `readTopicToEnd`. */
export interface ReadBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
}

/** Maximum wait for the consumer to leave the group and disconnect after reading. */
const disconnectTimeout = Duration.seconds(10)

const fail = (operation: string) => (cause: unknown) => new KafkaError({ operation, cause })

/**
 * Reads `topic` from `groupId`'s committed offsets (or from the earliest record where it has none)
 * up to the end offsets the topic had when the call started, and passes each batch to `handle`.
 * With `commit`, the offset after a batch is committed once `handle` has succeeded, so that a
 * second call with the same group starts behind it. Returns once every partition is read, or
 * fails with the first failure of `handle`, with nothing of that batch committed.
 */
export const readTopicToEnd = <E, R>(
  options: TopicReadOptions,
  handle: (batch: ReadBatch) => Effect.Effect<void, E, R>
): Effect.Effect<void, KafkaError | E, KafkaClient | R> =>
  Effect.gen(function*() {
    const { kafka } = yield* KafkaClient
    const runtime = yield* Effect.runtime<R>()
    const admin = kafka.admin()
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => admin.connect(), catch: fail("admin connect") }),
      () => Effect.promise(() => admin.disconnect()).pipe(Effect.timeout(disconnectTimeout), Effect.ignore)
    )
    const ends = yield* Effect.tryPromise({
      try: () => admin.fetchTopicOffsets(options.topic),
      catch: fail(`read the end offsets of ${options.topic}`)
    })
    const [committed] = yield* Effect.tryPromise({
      try: () => admin.fetchOffsets({ groupId: options.groupId, topics: [options.topic] }),
      catch: fail(`read the offsets of group ${options.groupId}`)
    })
    /** Offset after the last record to read, by partition, for the partitions that have records left. */
    const remaining = new Map<number, bigint>()
    for (const { high, low, partition } of ends) {
      const committedOffset = BigInt(committed?.partitions.find((entry) => entry.partition === partition)?.offset ?? "-1")
      const start = committedOffset < BigInt(low) ? BigInt(low) : committedOffset
      if (start < BigInt(high)) remaining.set(partition, BigInt(high))
    }
    if (remaining.size === 0) return

    const done = yield* Deferred.make<void, KafkaError | E>()
    let finished = false
    const finish = (effect: Effect.Effect<boolean>) => {
      finished = true
      return Runtime.runPromise(runtime)(effect)
    }
    const consumer = kafka.consumer({ groupId: options.groupId, allowAutoTopicCreation: false })
    const eachBatch = async (payload: EachBatchPayload) => {
      const { batch } = payload
      const end = remaining.get(batch.partition)
      // Batches that kafkajs fetched before reading ended are left alone: not handled, not committed.
      if (finished || end === undefined) return
      const messages = batch.messages.filter((message) => BigInt(message.offset) < end)
      if (messages.length > 0) {
        const exit = await Runtime.runPromiseExit(runtime)(handle({ topic: batch.topic, partition: batch.partition, messages }))
        if (exit._tag === "Failure") {
          await finish(Deferred.failCause(done, exit.cause))
          return
        }
        const next = BigInt(messages[messages.length - 1]!.offset) + 1n
        if (options.commit) {
          try {
            await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next.toString() }])
          } catch (cause) {
            await finish(Deferred.fail(done, fail(`commit ${batch.topic}[${batch.partition}]@${next}`)(cause)))
            return
          }
        }
      }
      if (BigInt(batch.lastOffset()) + 1n >= end) remaining.delete(batch.partition)
      if (remaining.size === 0) await finish(Deferred.succeed(done, undefined))
    }
    // Reading to the end needs every partition. Another member of the group would take some.
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const assigned = new Set(event.payload.memberAssignment[options.topic] ?? [])
      const missing = [...remaining.keys()].filter((partition) => !assigned.has(partition))
      if (missing.length === 0 || finished) return
      const error = new Error(
        `group ${options.groupId} has another member reading ${options.topic}, which holds partitions ${missing.join(", ")}; ` +
          "run one reader per group at a time"
      )
      void finish(Deferred.fail(done, fail(`read ${options.topic} as ${options.groupId}`)(error)))
    })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await consumer.connect()
          await consumer.subscribe({ topics: [options.topic], fromBeginning: true })
          await consumer.run({ autoCommit: false, eachBatch })
        },
        catch: fail(`consume ${options.topic} as ${options.groupId}`)
      }),
      () => Effect.promise(() => consumer.disconnect()).pipe(Effect.timeout(disconnectTimeout), Effect.ignore)
    )
    yield* Deferred.await(done)
  }).pipe(Effect.scoped)
