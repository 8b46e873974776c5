import { Schema } from "effect"
import { SensorId } from "./SensorId.ts"

/** Maximum length of a sensor's `type` and `location`, in characters. */
export const maxSensorLabelLength = 50

/**
 * Counted in characters (code points), as `varchar(50)` counts them, not in UTF-16 units. JSON
 * may encode U+0000 (`"\u0000"`), which PostgreSQL text cannot store (it rejects the row with
 * SQLSTATE 22021), so it is rejected here with a reason instead.
 */
const SensorLabel = Schema.String.pipe(
  Schema.filter((text) => [...text].length <= maxSensorLabelLength, {
    message: (issue) => `expected at most ${maxSensorLabelLength} characters, got ${[...String(issue.actual)].length}`
  }),
  Schema.filter((text) => !text.includes("\u0000"), {
    message: () => "contains the character U+0000, which PostgreSQL text cannot store"
  })
)

/**
 * Sensor metadata as it arrives on `logger.sensor.instance`: `{"id": 1, "type": "thermo",
 * "location": "hall-a"}`. `type` and `location` default to the empty string.
 */
export class Sensor extends Schema.Class<Sensor>("Sensor")({
  id: SensorId,
  type: Schema.optionalWith(SensorLabel, { default: () => "" }),
  location: Schema.optionalWith(SensorLabel, { default: () => "" })
}) {}
