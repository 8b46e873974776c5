import type { IHeaders, KafkaMessage, Message } from "kafkajs"

/** A record that could not be stored, with why. It is published to the dead-letter topic unchanged. */
export interface DeadLetter {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
  /**
   * Tag of the error that rejected the record: `InvalidMessage` or `InvalidReading` (decoding),
   * or `WriteRejected` (the database rejected its values).
   */
  readonly errorTag: string
  readonly reason: string
}

/** `dlq.error.tag` of a record whose values the database rejected (SQLSTATE class 22, 23 or 54). */
export const writeRejectedTag = "WriteRejected"

/** Prefix of every header the ingest job adds to a dead letter; `replay-dlq` removes them. */
export const deadLetterHeaderPrefix = "dlq."

/** Header names of a dead-letter record; the source position lets `replay-dlq` and operators find the original. */
export const deadLetterHeaders = {
  topic: "dlq.source.topic",
  partition: "dlq.source.partition",
  offset: "dlq.source.offset",
  errorTag: "dlq.error.tag",
  reason: "dlq.error.reason"
} as const

/**
 * Longest `dlq.error.reason`, in characters. A record of thousands of invalid readings lists a
 * reason for each, and the header must not push the dead letter past the broker's record size limit.
 */
export const maxReasonLength = 2000

/** Cuts `reason` to `maxReasonLength` characters, saying how much was left out. */
export const truncateReason = (reason: string): string => {
  if (reason.length <= maxReasonLength) return reason
  const omitted = reason.length - maxReasonLength
  return `${reason.slice(0, maxReasonLength)}… (${omitted} more characters)`
}

/** Builds the dead-letter record: the original key, value, timestamp and headers, plus the `dlq.*` headers. */
export const toDeadLetterRecord = (letter: DeadLetter): Message => {
  const headers: IHeaders = { ...letter.message.headers }
  headers[deadLetterHeaders.topic] = letter.topic
  headers[deadLetterHeaders.partition] = String(letter.partition)
  headers[deadLetterHeaders.offset] = letter.message.offset
  headers[deadLetterHeaders.errorTag] = letter.errorTag
  headers[deadLetterHeaders.reason] = truncateReason(letter.reason)
  return {
    key: letter.message.key,
    value: letter.message.value,
    timestamp: letter.message.timestamp,
    headers
  }
}
