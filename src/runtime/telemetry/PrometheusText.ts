/**
 * Renders Effect's metric registry in the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Incremental Effect counters become `counter`. Counters that may also go down (Effect's
 * default, such as `effect_fiber_active`) become `gauge`, as do gauges. Histograms become
 * `histogram` (cumulative `_bucket{le}` series, `_sum`, `_count`) and summaries `summary`
 * (`{quantile}`, `_sum`, `_count`). A frequency becomes a `counter` with one series per observed
 * value, in a `key` label. Metrics that share a name and type form one family with one HELP and
 * TYPE line.
 *
 * @module
 */
import { Effect, Metric, MetricKeyType, type MetricPair, MetricState, Option } from "effect"

/** `Content-Type` of the text format. */
export const prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

type FamilyType = "counter" | "gauge" | "histogram" | "summary"

interface Sample {
  readonly suffix: string
  readonly labels: ReadonlyArray<readonly [string, string]>
  readonly value: number | bigint
}

interface Family {
  readonly name: string
  readonly type: FamilyType
  readonly help: string
  /** The samples of each metric pair, keyed by its formatted labels. */
  readonly series: Array<{ readonly key: string; readonly samples: ReadonlyArray<Sample> }>
}

/** Replaces characters that Prometheus does not allow in metric names by `_`. */
export const sanitizeMetricName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(replaced) ? replaced : `_${replaced}`
}

/** Replaces characters that Prometheus does not allow in label names by `_`, and prefixes a name that starts with the reserved `__`. */
export const sanitizeLabelName = (name: string): string => {
  const replaced = name.replace(/[^a-zA-Z0-9_]/g, "_")
  const valid = /^[a-zA-Z_]/.test(replaced) ? replaced : `_${replaced}`
  return valid.startsWith("__") ? `x${valid}` : valid
}

/** Escapes a label value: backslash, double quote and line feed. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** Escapes HELP text: backslash and line feed. */
export const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** Formats a sample value, with infinities spelled `+Inf` and `-Inf` as the format requires. */
export const formatSampleValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const formatLabels = (labels: ReadonlyArray<readonly [string, string]>): string =>
  labels.length === 0 ? "" : `{${labels.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(",")}}`

const familyType = (pair: MetricPair.MetricPair.Untyped): FamilyType | undefined => {
  const state = pair.metricState
  if (MetricState.isCounterState(state)) {
    const keyType = pair.metricKey.keyType
    return MetricKeyType.isCounterKey(keyType) && !keyType.incremental ? "gauge" : "counter"
  }
  if (MetricState.isFrequencyState(state)) return "counter"
  if (MetricState.isGaugeState(state)) return "gauge"
  if (MetricState.isHistogramState(state)) return "histogram"
  if (MetricState.isSummaryState(state)) return "summary"
  return undefined
}

const samplesOf = (
  state: MetricState.MetricState.Untyped,
  labels: ReadonlyArray<readonly [string, string]>
): Array<Sample> => {
  if (MetricState.isCounterState(state)) return [{ suffix: "", labels, value: state.count }]
  if (MetricState.isGaugeState(state)) return [{ suffix: "", labels, value: state.value }]
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => ({ suffix: "", labels: [...labels, ["key", key] as const], value: count }))
  }
  if (MetricState.isHistogramState(state)) {
    const buckets: Array<Sample> = state.buckets.map(([bound, count]) => ({
      suffix: "_bucket",
      labels: [...labels, ["le", formatSampleValue(bound)] as const],
      value: count
    }))
    const last = state.buckets[state.buckets.length - 1]
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY) {
      buckets.push({ suffix: "_bucket", labels: [...labels, ["le", "+Inf"] as const], value: state.count })
    }
    return [...buckets, { suffix: "_sum", labels, value: state.sum }, { suffix: "_count", labels, value: state.count }]
  }
  if (MetricState.isSummaryState(state)) {
    const quantiles: Array<Sample> = state.quantiles.map(([quantile, value]) => ({
      suffix: "",
      labels: [...labels, ["quantile", formatSampleValue(quantile)] as const],
      value: Option.getOrElse(value, () => Number.NaN)
    }))
    return [...quantiles, { suffix: "_sum", labels, value: state.sum }, { suffix: "_count", labels, value: state.count }]
  }
  return []
}

/**
 * Renders metric pairs as Prometheus text. A metric whose name another metric of a different
 * type already uses is left out, because one family cannot have two types.
 */
export const renderPrometheusText = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) {
    const type = familyType(pair)
    if (type === undefined) continue
    const name = sanitizeMetricName(pair.metricKey.name)
    let family = families.get(name)
    if (family === undefined) {
      family = { name, type, help: Option.getOrElse(pair.metricKey.description, () => ""), series: [] }
      families.set(name, family)
    }
    if (family.type !== type) continue
    const labels = pair.metricKey.tags
      .map((tag) => [sanitizeLabelName(tag.key), tag.value] as const)
      .sort(([a], [b]) => a.localeCompare(b))
    family.series.push({ key: formatLabels(labels), samples: samplesOf(pair.metricState, labels) })
  }

  const lines: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (family.help !== "") lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    lines.push(`# TYPE ${family.name} ${family.type}`)
    // Sorted by labels for a stable output. The series of one histogram stay in bucket order.
    for (const series of family.series.sort((a, b) => a.key.localeCompare(b.key))) {
      for (const sample of series.samples) {
        lines.push(`${family.name}${sample.suffix}${formatLabels(sample.labels)} ${formatSampleValue(sample.value)}`)
      }
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`
}

/** Renders the current state of every metric in Effect's global registry. */
export const prometheusSnapshot: Effect.Effect<string> = Effect.map(Metric.snapshot, renderPrometheusText)
