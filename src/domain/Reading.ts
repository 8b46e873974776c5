import { Either, Schema } from "effect"
import { InvalidReading } from "./errors.ts"
import { MetricName } from "./MetricName.ts"
import { isSensorId, SensorId } from "./SensorId.ts"
import { defaultTimestampRange, EpochMicros, type TimestampRange, toEpochMicros } from "./Timestamp.ts"

/**
 * One reading of one sensor at one instant, after decoding. `metrics` maps each metric name to
 * its value; a `null` in the message means "no value" and leaves the metric out.
 */
export const Reading = Schema.Struct({
  time: EpochMicros,
  sensorId: SensorId,
  metrics: Schema.Record({ key: MetricName, value: Schema.Number })
})
export type Reading = typeof Reading.Type

/** Most metrics one reading may carry; a reading with more is rejected rather than flooding the metric registry. */
export const maxMetricsPerReading = 1000

const metricNameIs = Schema.is(MetricName)

/** Maximum number of names `isMetricName` remembers. Past it, the set starts over. */
const maxCheckedMetricNames = 10_000

/** Metric names that passed `MetricName`. A fleet repeats a few names in every reading, so most checks are one lookup. */
const checkedMetricNames = new Set<string>()

const isMetricName = (key: string): key is MetricName => {
  if (checkedMetricNames.has(key)) return true
  if (!metricNameIs(key)) return false
  if (checkedMetricNames.size >= maxCheckedMetricNames) checkedMetricNames.clear()
  checkedMetricNames.add(key)
  return true
}

const describe = (value: unknown): string => {
  if (value === undefined) return "undefined"
  // JSON.stringify writes Infinity and NaN (1e999 parses to Infinity) as null.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value)
  const text = JSON.stringify(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/**
 * Decodes one element of a `logger.sensor.ts` message. Every field other than `ts` and
 * `sensor_id` must be a finite number or `null`. Anything else makes the whole reading invalid,
 * and the error names the field and its value.
 */
export const decodeReading = (
  input: unknown,
  range: TimestampRange = defaultTimestampRange
): Either.Either<Reading, InvalidReading> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(new InvalidReading({ field: "", value: describe(input), reason: "expected a JSON object" }))
  }
  const record = input as Record<string, unknown>
  const time = toEpochMicros(record.ts, range)
  if (Either.isLeft(time)) {
    return Either.left(new InvalidReading({ field: "ts", value: describe(record.ts), reason: time.left }))
  }
  const sensorId = record.sensor_id
  if (!isSensorId(sensorId)) {
    return Either.left(
      new InvalidReading({
        field: "sensor_id",
        value: describe(sensorId),
        reason: "expected a non-negative integer"
      })
    )
  }
  // A plain object rather than `Object.create(null)`, with which building and reading the metrics
  // took almost three times as long in a micro-benchmark. "__proto__" is defined as an own property.
  const metrics: Record<MetricName, number> = {}
  let metricCount = 0
  for (const key in record) {
    if (key === "ts" || key === "sensor_id") continue
    metricCount++
    if (metricCount > maxMetricsPerReading) {
      return Either.left(
        new InvalidReading({
          field: "",
          value: `${Object.keys(record).length - 2} fields`,
          reason: `a reading may carry at most ${maxMetricsPerReading} metrics`
        })
      )
    }
    const value = record[key]
    if (value === null) continue
    if (!isMetricName(key)) {
      return Either.left(
        new InvalidReading({
          field: key,
          value: describe(value),
          reason: "invalid metric name: use letters, digits, '_', '.' or '-', starting with a letter or '_', at most 63 characters"
        })
      )
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return Either.left(
        new InvalidReading({ field: key, value: describe(value), reason: "expected a finite number or null" })
      )
    }
    if (key === "__proto__") Object.defineProperty(metrics, key, { value, enumerable: true, writable: true, configurable: true })
    else metrics[key] = value
  }
  return Either.right({ time: time.right, sensorId, metrics })
}
