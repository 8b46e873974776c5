import { Schema } from "effect"
import { SensorId } from "./SensorId.ts"

/** Maximum length of a sensor's `type` and `location`, in characters. */
export const maxSensorLabelLength = 50

/** Counted in characters (code points), as `varchar(50)` counts them, not in UTF-16 units. */
const SensorLabel = Schema.String.pipe(
  Schema.filter((text) => [...text].length <= maxSensorLabelLength, {
    message: (issue) => `expected at most ${maxSensorLabelLength} characters, got ${[...String(issue.actual)].length}`
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
