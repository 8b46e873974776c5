/**
 * The span around the handling of one fetched partition batch, following the OpenTelemetry
 * messaging conventions for Kafka consumers. It continues the producers' traces from the
 * records' `traceparent` headers (see `batchTraceOptions`), so the trace of a reading runs from
 * the device's send to the database write.
 *
 * @module
 */
import { Effect, Option } from "effect"
import type { KafkaMessage } from "kafkajs"
import { batchTraceOptions } from "./TraceContext.ts"

/** The records of one partition handled together, in offset order. */
export interface SpanBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<KafkaMessage>
}

/** Name of the batch span. */
export const batchSpanName = "IngestJob.batch"

/** Wraps the handling of `batch` in its consumer span, as a child of its producer or linked to its producers. */
export const withBatchSpan = (batch: SpanBatch, groupId: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => {
  const trace = batchTraceOptions(batch.messages)
  return Effect.withSpan(effect, batchSpanName, {
    kind: "consumer",
    parent: Option.getOrUndefined(trace.parent),
    root: Option.isNone(trace.parent),
    links: trace.links,
    attributes: {
      "messaging.system": "kafka",
      "messaging.operation.type": "process",
      "messaging.operation.name": "process",
      "messaging.consumer.group.name": groupId,
      "messaging.destination.name": batch.topic,
      "messaging.destination.partition.id": String(batch.partition),
      "messaging.batch.message_count": batch.messages.length,
      "messaging.kafka.offset.first": batch.messages[0]?.offset,
      "messaging.kafka.offset.last": batch.messages[batch.messages.length - 1]?.offset,
      "sensor_logger.traced_records": trace.tracedRecords,
      "sensor_logger.dropped_links": trace.droppedLinks
    }
  })
}
