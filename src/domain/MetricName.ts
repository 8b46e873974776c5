import { Schema } from "effect"

/** Maximum length of a metric name, in characters. */
export const maxMetricNameLength = 63

/**
 * Name of a metric, the key of a numeric field in a reading (`temperature`, `cpu`): 1 to 63
 * characters, letters, digits, `_`, `.` and `-`, starting with a letter or `_`.
 */
export const MetricName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_.-]*$/),
  Schema.maxLength(maxMetricNameLength),
  Schema.brand("MetricName"),
  Schema.annotations({
    identifier: "MetricName",
    description: "Metric name: letters, digits, '_', '.', '-', starting with a letter or '_', at most 63 characters"
  })
)
export type MetricName = typeof MetricName.Type
