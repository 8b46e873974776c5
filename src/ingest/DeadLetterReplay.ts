import { Effect, Option } from "effect"
import type { IHeaders, KafkaMessage, Message } from "kafkajs"
import type { KafkaClient } from "../runtime/kafka/KafkaClient.ts"
import type { KafkaError } from "../runtime/kafka/KafkaError.ts"
import { KafkaProducer } from "../runtime/kafka/KafkaProducer.ts"
import { readTopicToEnd } from "../runtime/kafka/TopicReader.ts"
import { deadLetterHeaderPrefix, deadLetterHeaders } from "./DeadLetter.ts"

/** Filter and mode of a `replayDeadLetters` run. */
export interface ReplayOptions {
  readonly deadLetterTopic: string
  /** Consumer group that records how far the dead-letter topic has been replayed. */
  readonly groupId: string
  /** Replay only dead letters with one of these `dlq.error.tag` values; empty replays every tag. */
  readonly errorTags: ReadonlyArray<string>
  /** Replay only dead letters from this partition of the source topic. */
  readonly sourcePartition: Option.Option<number>
  /** Replay only dead letters whose source offset is at least this. */
  readonly fromOffset: Option.Option<bigint>
  /** Replay only dead letters whose source offset is at most this. */
  readonly toOffset: Option.Option<bigint>
  /** Count what would be replayed, without producing or committing anything. */
  readonly dryRun: boolean
}

/** Counts of a replay run. */
export interface ReplaySummary {
  /** Dead letters read. */
  readonly scanned: number
  /** Dead letters re-published (or, in a dry run, that would have been). */
  readonly replayed: number
  /** Dead letters left out by the filter. */
  readonly skipped: number
  /** Dead letters without a `dlq.source.topic` header, which cannot be replayed. */
  readonly invalid: number
  /** Re-published records by destination topic. */
  readonly byTopic: Readonly<Record<string, number>>
  readonly dryRun: boolean
}

const headerText = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name]
  if (value === undefined) return undefined
  const first = Array.isArray(value) ? value[0] : value
  return first === undefined ? undefined : first.toString()
}

/** Returns the original headers of a dead letter: every header except the `dlq.*` ones the ingest job added. */
export const originalHeaders = (headers: IHeaders | undefined): IHeaders => {
  const kept: IHeaders = {}
  for (const name in headers) {
    if (!name.startsWith(deadLetterHeaderPrefix)) kept[name] = headers[name]
  }
  return kept
}

const parseOffset = (text: string | undefined): bigint | undefined => {
  if (text === undefined || !/^\d+$/.test(text)) return undefined
  return BigInt(text)
}

/** True when the dead letter passes every filter of `options`. */
export const matchesFilter = (message: KafkaMessage, options: ReplayOptions): boolean => {
  const { headers } = message
  const tag = headerText(headers, deadLetterHeaders.errorTag)
  if (options.errorTags.length > 0 && (tag === undefined || !options.errorTags.includes(tag))) return false
  if (Option.isSome(options.sourcePartition)) {
    if (headerText(headers, deadLetterHeaders.partition) !== String(options.sourcePartition.value)) return false
  }
  if (Option.isSome(options.fromOffset) || Option.isSome(options.toOffset)) {
    const offset = parseOffset(headerText(headers, deadLetterHeaders.offset))
    if (offset === undefined) return false
    if (Option.isSome(options.fromOffset) && offset < options.fromOffset.value) return false
    if (Option.isSome(options.toOffset) && offset > options.toOffset.value) return false
  }
  return true
}

/**
 * Re-publishes dead letters to the topics they came from (`dlq.source.topic`), with their
 * original key, value and headers minus the `dlq.*` ones, so that the ingest job reads them
 * again after a fix. The records get a new timestamp: the original may be older than the source
 * topic's retention, which would delete them right away.
 *
 * Reading starts at the offsets `groupId` committed, and each batch is committed once its
 * records are acknowledged, so a second run does not replay them again. Dead letters left out by
 * the filter are committed too, because a Kafka offset marks a position, not a set of records:
 * to replay them later, run with another group. A dry run reads the same records and commits
 * nothing.
 */
export const replayDeadLetters = (
  options: ReplayOptions
): Effect.Effect<ReplaySummary, KafkaError, KafkaClient | KafkaProducer> =>
  Effect.gen(function*() {
    const producer = yield* KafkaProducer
    let scanned = 0
    let skipped = 0
    let invalid = 0
    const byTopic: Record<string, number> = {}

    yield* readTopicToEnd(
      { topic: options.deadLetterTopic, groupId: options.groupId, commit: !options.dryRun },
      (batch) =>
        Effect.gen(function*() {
          const outgoing = new Map<string, Array<Message>>()
          for (const message of batch.messages) {
            scanned += 1
            if (!matchesFilter(message, options)) {
              skipped += 1
              continue
            }
            const sourceTopic = headerText(message.headers, deadLetterHeaders.topic)
            if (sourceTopic === undefined || sourceTopic === "") {
              invalid += 1
              yield* Effect.logWarning("Dead letter without a dlq.source.topic header; it cannot be replayed").pipe(
                Effect.annotateLogs({ topic: batch.topic, partition: batch.partition, offset: message.offset })
              )
              continue
            }
            const records = outgoing.get(sourceTopic) ?? []
            records.push({ key: message.key, value: message.value, headers: originalHeaders(message.headers) })
            outgoing.set(sourceTopic, records)
          }
          for (const [topic, records] of outgoing) {
            if (!options.dryRun) yield* producer.send(topic, records)
            byTopic[topic] = (byTopic[topic] ?? 0) + records.length
          }
        })
    )
    const replayed = Object.values(byTopic).reduce((sum, count) => sum + count, 0)
    return { scanned, replayed, skipped, invalid, byTopic, dryRun: options.dryRun }
  }).pipe(
    Effect.withSpan("DeadLetterReplay.run", {
      attributes: { "messaging.source.name": options.deadLetterTopic, "messaging.consumer.group.name": options.groupId }
    })
  )
