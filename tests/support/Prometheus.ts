import parsePrometheusTextFormat, { type PrometheusFamily, type PrometheusSample } from "parse-prometheus-text-format"

/** Parses a `/metrics` body; throws when a family is missing, so a failed lookup names it. */
export const parseMetrics = (text: string) => {
  const families = parsePrometheusTextFormat(text)
  const family = (name: string): PrometheusFamily => {
    const found = families.find((candidate) => candidate.name === name)
    if (found === undefined) throw new Error(`no metric family ${name} in:\n${text}`)
    return found
  }
  return { families, family }
}

const matches = (sample: PrometheusSample, labels: Readonly<Record<string, string>>) =>
  Object.entries(labels).every(([name, value]) => sample.labels?.[name] === value)

/**
 * Returns the value of the counter or gauge series of `name` whose labels include `labels`,
 * or 0 when no series matches (a counter that was never incremented has no series).
 */
export const sampleValue = (text: string, name: string, labels: Readonly<Record<string, string>> = {}): number => {
  const family = parsePrometheusTextFormat(text).find((candidate) => candidate.name === name)
  const samples = family?.metrics.filter((sample) => matches(sample, labels)) ?? []
  if (samples.length > 1) throw new Error(`${samples.length} series of ${name} match ${JSON.stringify(labels)}`)
  return samples.length === 0 ? 0 : Number(samples[0]!.value)
}

/** Count, sum and buckets of one histogram series. */
export interface HistogramSeries {
  readonly count: number
  readonly sum: number
  readonly buckets: Readonly<Record<string, number>>
}

const labelPattern = (name: string, value: string) => `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`

/**
 * Returns the histogram series of `name` whose labels include `labels`, or zeros when none does.
 * parse-prometheus-text-format 1.1.1 merges the series of a histogram that has labels other
 * than `le` and drops their `_sum` and `_count`, so this keeps only the lines of the wanted
 * series, strips the wanted labels from them, and lets the parser read the rest.
 */
export const histogramSeries = (
  text: string,
  name: string,
  labels: Readonly<Record<string, string>>
): HistogramSeries => {
  const patterns = Object.entries(labels).map(([label, value]) => labelPattern(label, value))
  const lines = text.split("\n").filter((line) => {
    if (line.startsWith(`# TYPE ${name} `)) return true
    if (!line.startsWith(`${name}_`)) return false
    return patterns.every((pattern) => line.includes(pattern))
  })
  const stripped = lines.map((line) =>
    patterns.reduce((current, pattern) => current.replace(`${pattern},`, "").replace(`,${pattern}`, "").replace(pattern, ""), line)
      .replace("{}", "")
  )
  const family = parsePrometheusTextFormat(`${stripped.join("\n")}\n`).find((candidate) => candidate.name === name)
  const sample = family?.metrics[0]
  if (sample === undefined || sample.count === undefined) return { count: 0, sum: 0, buckets: {} }
  return {
    count: Number(sample.count),
    sum: Number(sample.sum),
    buckets: Object.fromEntries(Object.entries(sample.buckets ?? {}).map(([bound, count]) => [bound, Number(count)]))
  }
}

/** Fetches `/metrics` from `baseUrl`. */
export const fetchMetrics = async (baseUrl: string): Promise<string> => {
  const response = await fetch(`${baseUrl}/metrics`)
  if (!response.ok) throw new Error(`GET ${baseUrl}/metrics returned ${response.status}`)
  return response.text()
}
