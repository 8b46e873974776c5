import { Context, Effect, Layer } from "effect"
import { KafkaClient } from "./KafkaClient.ts"
import { KafkaError } from "./KafkaError.ts"

/** A connected kafkajs admin client. */
export class KafkaAdmin extends Context.Tag("sensor-logger/KafkaAdmin")<
  KafkaAdmin,
  {
    /** Creates those of `topics` that do not exist, with `partitions` partitions and the broker's default replication factor. */
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
          Effect.asVoid
        )
      return { ensureTopics }
    })
  )
}
