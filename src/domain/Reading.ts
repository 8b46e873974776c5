import { Either, Schema } from "effect"
import { describeValue as describe } from "./DescribeValue.ts"
import { InvalidReading } from "./errors.ts"
import { MetricName } from "./MetricName.ts"
import { describeSensorIdProblem, isSensorId, SensorId } from "./SensorId.ts"
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

/**
 * Maximum magnitude of a metric value. PostgreSQL's float8 `sum(value)` fails with "value out of
 * range: overflow" (SQLSTATE 22003) once a sum passes the largest double, about 1.797e308. Stored
 * values whose sum overflows make every average and read-model refresh over them fail. The sum of
 * up to 1.7e18 values of at most 1e290 stays below that maximum.
 */
export const maxMetricMagnitude = 1e290

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

/**
 * Decodes one element of a `logger.sensor.ts` message. Every field other than `ts` and
 * `sensor_id` must be a number of magnitude at most `maxMetricMagnitude`, or `null`. Anything
 * else makes the whole reading invalid, and the error names the field and its value.
 */
export const decodeReading = (
  input: unknown,
  range: TimestampRange = defaultTimestampRange
): Either.Either<Reading, InvalidReading> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(new InvalidReading({ value: describe(input), reason: "expected a JSON object" }))
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
        reason: describeSensorIdProblem(sensorId)
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
          reason: "invalid metric name: expected 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or '_'"
        })
      )
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return Either.left(
        new InvalidReading({ field: key, value: describe(value), reason: "expected a finite number or null" })
      )
    }
    if (Math.abs(value) > maxMetricMagnitude) {
      return Either.left(
        new InvalidReading({
          field: key,
          value: describe(value),
          reason: `expected a magnitude of at most ${maxMetricMagnitude}, so that sums of the values stay finite`
        })
      )
    }
    if (key === "__proto__") Object.defineProperty(metrics, key, { value, enumerable: true, writable: true, configurable: true })
    else metrics[key] = value
  }
  return Either.right({ time: time.right, sensorId, metrics })
}
