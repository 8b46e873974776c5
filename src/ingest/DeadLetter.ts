import type { IHeaders, KafkaMessage, Message } from "kafkajs"

/** A record that could not be stored, with why. It is published to the dead-letter topic unchanged. */
export interface DeadLetter {
  readonly topic: string
  readonly partition: number
  readonly message: KafkaMessage
  /** Tag of the error that rejected the record, such as `InvalidMessage` or `InvalidReading`. */
  readonly errorTag: string
  readonly reason: string
}

/** Header names of a dead-letter record; the source position lets `replay-dlq` and operators find the original. */
export const deadLetterHeaders = {
  topic: "dlq.source.topic",
  partition: "dlq.source.partition",
  offset: "dlq.source.offset",
  errorTag: "dlq.error.tag",
  reason: "dlq.error.reason"
} as const

/** Builds the dead-letter record: the original key, value, timestamp and headers, plus the `dlq.*` headers. */
export const toDeadLetterRecord = (letter: DeadLetter): Message => {
  const headers: IHeaders = { ...letter.message.headers }
  headers[deadLetterHeaders.topic] = letter.topic
  headers[deadLetterHeaders.partition] = String(letter.partition)
  headers[deadLetterHeaders.offset] = letter.message.offset
  headers[deadLetterHeaders.errorTag] = letter.errorTag
  headers[deadLetterHeaders.reason] = letter.reason
  return {
    key: letter.message.key,
    value: letter.message.value,
    timestamp: letter.message.timestamp,
    headers
  }
}
