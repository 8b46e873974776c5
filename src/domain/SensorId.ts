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
