import { Context, Effect, Layer } from "effect"
import { type Message, Partitioners, type RecordMetadata } from "kafkajs"
import { currentTraceHeaders, traceparentHeader } from "../telemetry/TraceContext.ts"
import { KafkaClient } from "./KafkaClient.ts"
import { KafkaError } from "./KafkaError.ts"

/** Adds the trace headers to each message that has no `traceparent` of its own, such as a dead letter's copy. */
const withTraceHeaders = (messages: ReadonlyArray<Message>, traceHeaders: Record<string, string>): Array<Message> => {
  if (traceHeaders[traceparentHeader] === undefined) return [...messages]
  return messages.map((message) =>
    message.headers?.[traceparentHeader] !== undefined ? message : { ...message, headers: { ...message.headers, ...traceHeaders } }
  )
}

/** A connected, idempotent kafkajs producer (acks from all in-sync replicas). */
export class KafkaProducer extends Context.Tag("sensor-logger/KafkaProducer")<
  KafkaProducer,
  {
    /**
     * Sends `messages` to `topic` and waits for the broker's acknowledgement. While traces are
     * exported, a message without a `traceparent` header gets the context of the send's span.
     */
    readonly send: (
      topic: string,
      messages: ReadonlyArray<Message>
    ) => Effect.Effect<ReadonlyArray<RecordMetadata>, KafkaError>
  }
>() {
  static readonly layer: Layer.Layer<KafkaProducer, KafkaError, KafkaClient> = Layer.scoped(
    KafkaProducer,
    Effect.gen(function*() {
      const { kafka } = yield* KafkaClient
      // The default partitioner is named explicitly only to silence kafkajs's start-up notice about it.
      const producer = kafka.producer({
        idempotent: true,
        maxInFlightRequests: 5,
        allowAutoTopicCreation: true,
        createPartitioner: Partitioners.DefaultPartitioner
      })
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => producer.connect(),
          catch: (cause) => new KafkaError({ operation: "producer connect", cause })
        }),
        () =>
          Effect.promise(() => producer.disconnect()).pipe(
            Effect.interruptible,
            Effect.timeout("10 seconds"),
            Effect.catchAllCause((cause) => Effect.logWarning("Kafka producer did not disconnect cleanly", cause))
          )
      )
      const send = (topic: string, messages: ReadonlyArray<Message>) =>
        Effect.flatMap(currentTraceHeaders, (traceHeaders) =>
          Effect.tryPromise({
            try: () => producer.send({ topic, messages: withTraceHeaders(messages, traceHeaders), acks: -1 }),
            catch: (cause) => new KafkaError({ operation: `send to ${topic}`, cause })
          })).pipe(
            Effect.withSpan("KafkaProducer.send", {
              kind: "producer",
              attributes: {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.batch.message_count": messages.length
              }
            })
          )
      return { send }
    })
  )
}
