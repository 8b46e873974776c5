import { Context, Effect, Layer, Schedule } from "effect"
import { KafkaClient } from "./KafkaClient.ts"
import { KafkaError } from "./KafkaError.ts"

/**
 * Waits between attempts of `ensureTopics` after a retriable error: 200 ms doubling, at most 7
 * retries (25.4 s of waits in all). A topic that was just created, by this process or another
 * one, can be missing from the broker's metadata for a moment. kafkajs's `waitForLeaders` then
 * fails with "This server does not host this topic-partition" instead of waiting, which was seen
 * when two ingest processes started at once on a loaded machine.
 */
const topicsRetrySchedule = Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(7)))

/** A connected kafkajs admin client. */
export class KafkaAdmin extends Context.Tag("sensor-logger/KafkaAdmin")<
  KafkaAdmin,
  {
    /**
     * Creates those of `topics` that do not exist, with `partitions` partitions and the broker's
     * default replication factor, then fetches their metadata. Retriable errors of either step
     * are retried for 25.4 s at most.
     */
    readonly ensureTopics: (topics: ReadonlyArray<string>, partitions: number) => Effect.Effect<void, KafkaError>
  }
>() {
  static readonly layer: Layer.Layer<KafkaAdmin, KafkaError, KafkaClient> = Layer.scoped(
    KafkaAdmin,
    Effect.gen(function*() {
      const { kafka } = yield* KafkaClient
      const admin = kafka.admin()
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => admin.connect(),
          catch: (cause) => new KafkaError({ operation: "admin connect", cause })
        }),
        () =>
          Effect.promise(() => admin.disconnect()).pipe(
            Effect.interruptible,
            Effect.timeout("10 seconds"),
            Effect.catchAllCause((cause) => Effect.logWarning("Kafka admin did not disconnect cleanly", cause))
          )
      )
      const ensureTopics = (topics: ReadonlyArray<string>, partitions: number) =>
        Effect.tryPromise({
          try: async () => {
            const existing = new Set(await admin.listTopics())
            const missing = topics.filter((topic) => !existing.has(topic))
            if (missing.length === 0) return []
            await admin.createTopics({
              topics: missing.map((topic) => ({ topic, numPartitions: partitions })),
              waitForLeaders: true
            })
            return missing
          },
          catch: (cause) => new KafkaError({ operation: `create topics ${topics.join(", ")}`, cause })
        }).pipe(
          Effect.tap((created) =>
            created.length === 0
              ? Effect.void
              : Effect.logInfo("Created topics").pipe(Effect.annotateLogs({ topics: created.join(", "), partitions }))
          ),
          Effect.zipRight(Effect.tryPromise({
            try: () => admin.fetchTopicMetadata({ topics: [...topics] }),
            catch: (cause) => new KafkaError({ operation: `fetch metadata of topics ${topics.join(", ")}`, cause })
          })),
          Effect.tapError((error) =>
            error.retriable
              ? Effect.logWarning("Topics are not ready yet, retrying").pipe(Effect.annotateLogs({ error: error.message }))
              : Effect.void
          ),
          Effect.retry({ schedule: topicsRetrySchedule, while: (error) => error.retriable }),
          Effect.asVoid
        )
      return { ensureTopics }
    })
  )
}
