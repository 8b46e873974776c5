import { Either } from "effect"
import { InvalidMessage, type InvalidReading } from "./errors.ts"
import { decodeReading, type Reading } from "./Reading.ts"
import { decodeSensor, type Sensor } from "./Sensor.ts"
import { defaultTimestampRange, type TimestampRange } from "./Timestamp.ts"

/** The topic of readings, in the original format: a JSON array of readings, or one reading object. */
export const readingsTopic = "logger.sensor.ts"

/** The topic of sensor metadata: one JSON object `{"id", "type", "location"}` a record. */
export const sensorsTopic = "logger.sensor.instance"

/** The readings of one Kafka record, and the elements that could not be decoded, by position. */
export interface DecodedReadings {
  readonly readings: ReadonlyArray<Reading>
  readonly rejected: ReadonlyArray<{ readonly index: number; readonly error: InvalidReading }>
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const parseJson = (topic: string, value: Uint8Array | null): Either.Either<unknown, InvalidMessage> => {
  if (value === null || value.length === 0) {
    return Either.left(new InvalidMessage({ topic, reason: "the record has no value" }))
  }
  let text: string
  try {
    text = utf8.decode(value)
  } catch {
    return Either.left(new InvalidMessage({ topic, reason: "the value is not valid UTF-8" }))
  }
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(new InvalidMessage({ topic, reason: `the value is not valid JSON: ${(error as Error).message}` }))
  }
}

/**
 * Decodes a record of `logger.sensor.ts`. A record that is not JSON, or neither an object nor an
 * array, fails as a whole. Otherwise each element is decoded on its own, so one invalid reading
 * does not cost the valid ones beside it.
 */
export const decodeReadingMessage = (
  value: Uint8Array | null,
  range: TimestampRange = defaultTimestampRange,
  topic: string = readingsTopic
): Either.Either<DecodedReadings, InvalidMessage> =>
  Either.flatMap(parseJson(topic, value), (json) => {
    const items = Array.isArray(json) ? json : [json]
    if (!Array.isArray(json) && (typeof json !== "object" || json === null)) {
      return Either.left(new InvalidMessage({ topic, reason: "expected a JSON array of readings or one reading object" }))
    }
    const readings: Array<Reading> = []
    const rejected: Array<{ index: number; error: InvalidReading }> = []
    items.forEach((item, index) => {
      const decoded = decodeReading(item, range)
      if (Either.isRight(decoded)) readings.push(decoded.right)
      else rejected.push({ index, error: decoded.left })
    })
    return Either.right({ readings, rejected })
  })

/** Decodes a record of `logger.sensor.instance` into a sensor, or fails with one line per wrong field. */
export const decodeSensorMessage = (
  value: Uint8Array | null,
  topic: string = sensorsTopic
): Either.Either<Sensor, InvalidMessage> =>
  Either.flatMap(parseJson(topic, value), (json) =>
    Either.mapLeft(decodeSensor(json), (reason) => new InvalidMessage({ topic, reason })))
