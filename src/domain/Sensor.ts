import { Either, Schema } from "effect"
import { describeValue } from "./DescribeValue.ts"
import { describeSensorIdProblem, isSensorId, SensorId } from "./SensorId.ts"

/** Maximum length of a sensor's `type` and `location`, in characters. */
export const maxSensorLabelLength = 50

/**
 * Describes why `text` cannot be a sensor's `type` or `location`, or returns `undefined` when it
 * can. Length is counted in characters (code points), as `varchar(50)` counts them, not in UTF-16
 * units. JSON may encode U+0000 (`"\u0000"`), which PostgreSQL text cannot store (it rejects the
 * row with SQLSTATE 22021), so it is rejected here with a reason instead.
 */
const describeLabelProblem = (text: string): string | undefined => {
  const length = [...text].length
  if (length > maxSensorLabelLength) return `expected at most ${maxSensorLabelLength} characters, got ${length}`
  if (text.includes("\u0000")) return "contains the character U+0000, which PostgreSQL text cannot store"
  return undefined
}

const SensorLabel = Schema.String.pipe(Schema.filter((text) => describeLabelProblem(text) ?? true))

/**
 * Sensor metadata as it arrives on `logger.sensor.instance`: `{"id": 1, "type": "thermo",
 * "location": "hall-a"}`. `type` and `location` default to the empty string.
 */
export class Sensor extends Schema.Class<Sensor>("Sensor")({
  id: SensorId,
  type: Schema.optionalWith(SensorLabel, { default: () => "" }),
  location: Schema.optionalWith(SensorLabel, { default: () => "" })
}) {}

const labelFields = ["type", "location"] as const

/**
 * Decodes the parsed JSON of a `logger.sensor.instance` record into a `Sensor`. It checks the
 * rules of the `Sensor` schema itself, so that a rejection is one line per wrong field that names
 * the field, its value and what is expected (`field "type" = 5: expected a string of at most 50
 * characters`), joined by "; ". Fields other than `id`, `type` and `location` are ignored.
 */
export const decodeSensor = (input: unknown): Either.Either<Sensor, string> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(`expected one JSON object with "id", "type" and "location", got ${describeValue(input)}`)
  }
  const record = input as Record<string, unknown>
  const problems: Array<string> = []
  if (!Object.hasOwn(record, "id")) {
    problems.push(`field "id" is missing: expected a non-negative integer`)
  } else if (!isSensorId(record.id)) {
    problems.push(`field "id" = ${describeValue(record.id)}: ${describeSensorIdProblem(record.id)}`)
  }
  for (const field of labelFields) {
    if (!Object.hasOwn(record, field)) continue
    const value = record[field]
    const problem = typeof value === "string"
      ? describeLabelProblem(value)
      : `expected a string of at most ${maxSensorLabelLength} characters`
    if (problem !== undefined) problems.push(`field "${field}" = ${describeValue(value)}: ${problem}`)
  }
  if (problems.length > 0) return Either.left(problems.join("; "))
  return Either.right(
    new Sensor({
      id: record.id as SensorId,
      type: (record.type as string | undefined) ?? "",
      location: (record.location as string | undefined) ?? ""
    })
  )
}
