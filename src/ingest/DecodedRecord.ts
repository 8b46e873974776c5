import { Either } from "effect"
import type { KafkaMessage } from "kafkajs"
import { decodeReadingMessage, decodeSensorMessage } from "../domain/Message.ts"
import type { Reading } from "../domain/Reading.ts"
import type { Sensor } from "../domain/Sensor.ts"
import type { TimestampRange } from "../domain/Timestamp.ts"

/** Why a record has to go to the dead-letter topic: the error's tag and a reason naming the field and value. */
export interface Rejection {
  readonly errorTag: string
  readonly reason: string
}

/**
 * One Kafka record after decoding: what it contributes to the database, and why it is
 * dead-lettered, if it is. A record with some invalid readings keeps its valid ones and is also
 * dead-lettered with the reasons of the others. A replay of that dead letter after a fix then
 * stores the missing readings and rewrites the same values for the rest.
 */
export interface DecodedRecord {
  readonly message: KafkaMessage
  readonly readings: ReadonlyArray<Reading>
  readonly sensors: ReadonlyArray<Sensor>
  /** Metric values in `readings`, the rows they become in `sensor_data`. */
  readonly rows: number
  readonly rejection: Rejection | undefined
}

/** The topics whose records the ingest job decodes; any other topic is read as readings. */
export interface IngestTopics {
  readonly readings: string
  readonly sensors: string
}

const countRows = (readings: ReadonlyArray<Reading>): number => {
  let rows = 0
  for (const reading of readings) {
    for (const _name in reading.metrics) rows += 1
  }
  return rows
}

const decodeRecord = (
  topic: string,
  message: KafkaMessage,
  topics: IngestTopics,
  range: TimestampRange
): DecodedRecord => {
  if (topic === topics.sensors) {
    const sensor = decodeSensorMessage(message.value, topic)
    return Either.isRight(sensor)
      ? { message, readings: [], sensors: [sensor.right], rows: 0, rejection: undefined }
      : { message, readings: [], sensors: [], rows: 0, rejection: { errorTag: sensor.left._tag, reason: sensor.left.message } }
  }
  const decoded = decodeReadingMessage(message.value, range, topic)
  if (Either.isLeft(decoded)) {
    return { message, readings: [], sensors: [], rows: 0, rejection: { errorTag: decoded.left._tag, reason: decoded.left.message } }
  }
  const { readings, rejected } = decoded.right
  const rejection = rejected.length === 0
    ? undefined
    : { errorTag: "InvalidReading", reason: rejected.map(({ error, index }) => `[${index}] ${error.message}`).join("; ") }
  return { message, readings, sensors: [], rows: countRows(readings), rejection }
}

/** Decodes the records of one fetch of `topic`, all at once, keeping their offset order. */
export const decodeRecords = (
  topic: string,
  messages: ReadonlyArray<KafkaMessage>,
  topics: IngestTopics,
  range: TimestampRange
): Array<DecodedRecord> => messages.map((message) => decodeRecord(topic, message, topics, range))
