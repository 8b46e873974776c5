import { Schema } from "effect"

/**
 * Identifier of a sensor, as devices send it in `sensor_id` and `id`: a non-negative safe integer.
 */
export const SensorId = Schema.NonNegativeInt.pipe(
  Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER),
  Schema.brand("SensorId"),
  Schema.annotations({ identifier: "SensorId", description: "Sensor identifier, a non-negative integer" })
)
export type SensorId = typeof SensorId.Type

/**
 * Returns whether `value` is a `SensorId`. It is the schema's check written out, because decoding
 * runs it once per reading, and `Schema.is` took about a microsecond a call in the ingest job's
 * CPU profile.
 */
export const isSensorId = (value: unknown): value is SensorId =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/**
 * Describes what a sensor id must be, for a `value` that `isSensorId` rejected. An integer above
 * `Number.MAX_SAFE_INTEGER` gets the maximum named, because it is a non-negative integer but JSON
 * parsing has already rounded it to the nearest double.
 */
export const describeSensorIdProblem = (value: unknown): string =>
  typeof value === "number" && Number.isInteger(value) && value > Number.MAX_SAFE_INTEGER
    ? `expected a non-negative integer of at most ${Number.MAX_SAFE_INTEGER} (Number.MAX_SAFE_INTEGER)`
    : "expected a non-negative integer"
