import { Either } from "effect"
import { decodeReadingMessage, decodeSensorMessage } from "../domain/Message.ts"
import type { Reading } from "../domain/Reading.ts"
import type { Sensor } from "../domain/Sensor.ts"
import type { TimestampRange } from "../domain/Timestamp.ts"
import type { PartitionBatch } from "../runtime/kafka/PartitionBatches.ts"
import type { DeadLetter } from "./DeadLetter.ts"

/** The readings, sensors and dead letters of one decoded partition batch, in offset order. */
export interface DecodedBatch {
  readonly readings: ReadonlyArray<Reading>
  readonly sensors: ReadonlyArray<Sensor>
  readonly deadLetters: ReadonlyArray<DeadLetter>
}

/**
 * Decodes every record of a batch by its topic. A record with some invalid readings keeps its
 * valid ones and is also dead-lettered with the reasons of the others. A replay of that dead
 * letter after a fix then stores the missing readings and rewrites the same values for the rest.
 */
export const decodeBatch = (
  batch: PartitionBatch,
  topics: { readonly readings: string; readonly sensors: string },
  range: TimestampRange
): DecodedBatch => {
  const readings: Array<Reading> = []
  const sensors: Array<Sensor> = []
  const deadLetters: Array<DeadLetter> = []
  const reject = (message: PartitionBatch["messages"][number], errorTag: string, reason: string) =>
    deadLetters.push({ topic: batch.topic, partition: batch.partition, message, errorTag, reason })

  for (const message of batch.messages) {
    if (batch.topic === topics.sensors) {
      const sensor = decodeSensorMessage(message.value, batch.topic)
      if (Either.isRight(sensor)) sensors.push(sensor.right)
      else reject(message, sensor.left._tag, sensor.left.message)
      continue
    }
    const decoded = decodeReadingMessage(message.value, range, batch.topic)
    if (Either.isLeft(decoded)) {
      reject(message, decoded.left._tag, decoded.left.message)
      continue
    }
    for (const reading of decoded.right.readings) readings.push(reading)
    if (decoded.right.rejected.length > 0) {
      const reasons = decoded.right.rejected.map(({ index, error }) => `[${index}] ${error.message}`)
      reject(message, "InvalidReading", reasons.join("; "))
    }
  }
  return { readings, sensors, deadLetters }
}

/** Splits readings into consecutive groups of at most `maxRows` metric values; a larger reading forms a group of its own. */
export const chunkByRows = (readings: ReadonlyArray<Reading>, maxRows: number): Array<ReadonlyArray<Reading>> => {
  const chunks: Array<Array<Reading>> = []
  let current: Array<Reading> = []
  let rows = 0
  for (const reading of readings) {
    const size = Object.keys(reading.metrics).length
    if (current.length > 0 && rows + size > maxRows) {
      chunks.push(current)
      current = []
      rows = 0
    }
    current.push(reading)
    rows += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}
