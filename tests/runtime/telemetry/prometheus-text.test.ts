import { Effect, Metric, MetricBoundaries } from "effect"
import parsePrometheusTextFormat from "parse-prometheus-text-format"
import { describe, expect, it } from "vitest"
import {
  escapeLabelValue,
  formatSampleValue,
  prometheusSnapshot,
  renderPrometheusText,
  sanitizeLabelName,
  sanitizeMetricName
} from "../../../src/runtime/telemetry/PrometheusText.ts"
import { histogramSeries } from "../../support/Prometheus.ts"

const family = (text: string, name: string) => {
  const found = parsePrometheusTextFormat(text).find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`no family ${name} in:\n${text}`)
  return found
}

describe("Prometheus text rendering", () => {
  it("renders counters with HELP, TYPE and labels", async () => {
    const counter = Metric.counter("test_render_requests_total", { description: "Requests seen.\nSecond line", incremental: true })
    await Effect.runPromise(
      Effect.all([
        Metric.incrementBy(Metric.tagged(counter, "route", "/a"), 3),
        Metric.increment(Metric.tagged(counter, "route", "/b"))
      ])
    )
    const text = await Effect.runPromise(prometheusSnapshot)
    expect(text).toContain("# HELP test_render_requests_total Requests seen.\\nSecond line\n")
    expect(text).toContain("# TYPE test_render_requests_total counter\n")
    const parsed = family(text, "test_render_requests_total")
    expect(parsed.type).toBe("COUNTER")
    expect(parsed.metrics).toEqual([
      { value: "3", labels: { route: "/a" } },
      { value: "1", labels: { route: "/b" } }
    ])
  })

  it("renders histograms as cumulative buckets with sum and count", async () => {
    const histogram = Metric.histogram(
      "test_render_duration_seconds",
      MetricBoundaries.fromIterable([0.1, 1, 10]),
      "Durations."
    )
    await Effect.runPromise(
      Effect.forEach([0.05, 0.5, 0.5, 5, 50], (value) => Metric.update(Metric.tagged(histogram, "status", "200"), value))
    )
    await Effect.runPromise(Metric.update(Metric.tagged(histogram, "status", "500"), 0.5))
    const text = await Effect.runPromise(prometheusSnapshot)
    expect(family(text, "test_render_duration_seconds").type).toBe("HISTOGRAM")
    const ok = histogramSeries(text, "test_render_duration_seconds", { status: "200" })
    expect(ok.buckets).toEqual({ "0.1": 1, "1": 3, "10": 4, "+Inf": 5 })
    expect(ok.count).toBe(5)
    expect(ok.sum).toBeCloseTo(56.05)
    const failed = histogramSeries(text, "test_render_duration_seconds", { status: "500" })
    expect(failed.count).toBe(1)
    expect(text).toContain(`test_render_duration_seconds_bucket{status="200",le="+Inf"} 5\n`)
    expect(text).toContain(`test_render_duration_seconds_count{status="500"} 1\n`)
  })

  it("renders gauges, summaries and frequencies", async () => {
    const gauge = Metric.gauge("test_render_lag")
    const summary = Metric.summary({
      name: "test_render_sizes",
      maxAge: "1 minute",
      maxSize: 100,
      error: 0.01,
      quantiles: [0.5, 0.99]
    })
    const frequency = Metric.frequency("test_render_outcomes_total")
    await Effect.runPromise(
      Effect.all([
        Metric.set(Metric.tagged(gauge, "partition", "0"), 42),
        Metric.update(summary, 10),
        Metric.update(frequency, "ok"),
        Metric.update(frequency, "ok"),
        Metric.update(frequency, "failed")
      ])
    )
    const text = await Effect.runPromise(prometheusSnapshot)

    expect(family(text, "test_render_lag").metrics).toEqual([{ value: "42", labels: { partition: "0" } }])
    const sizes = family(text, "test_render_sizes")
    expect(sizes.type).toBe("SUMMARY")
    expect(sizes.metrics[0]?.count).toBe("1")
    expect(sizes.metrics[0]?.quantiles?.["0.5"]).toBe("10")

    const outcomes = family(text, "test_render_outcomes_total")
    expect(outcomes.type).toBe("COUNTER")
    expect(outcomes.metrics).toEqual([
      { value: "1", labels: { key: "failed" } },
      { value: "2", labels: { key: "ok" } }
    ])
  })

  it("escapes label values that the parser reads back unchanged", async () => {
    const value = `C:\\dir\\"quoted"\nnext`
    const counter = Metric.counter("test_render_escapes_total", { incremental: true }).pipe(Metric.tagged("path", value))
    await Effect.runPromise(Metric.increment(counter))
    const text = await Effect.runPromise(prometheusSnapshot)
    expect(family(text, "test_render_escapes_total").metrics[0]?.labels).toEqual({ path: value })
    expect(escapeLabelValue(value)).toBe(`C:\\\\dir\\\\\\"quoted\\"\\nnext`)
  })

  it("types a counter that may decrease as a gauge", async () => {
    const active = Metric.counter("test_render_active")
    await Effect.runPromise(Effect.all([Metric.incrementBy(active, 3), Metric.incrementBy(active, -1)]))
    const text = await Effect.runPromise(prometheusSnapshot)
    expect(family(text, "test_render_active").type).toBe("GAUGE")
    expect(family(text, "test_render_active").metrics).toEqual([{ value: "2" }])
  })

  it("sanitizes names and formats special values", () => {
    expect(sanitizeMetricName("ingest.records-total")).toBe("ingest_records_total")
    expect(sanitizeMetricName("1st")).toBe("_1st")
    expect(sanitizeLabelName("messaging.partition")).toBe("messaging_partition")
    expect(sanitizeLabelName("__reserved")).toBe("x__reserved")
    expect(formatSampleValue(Number.POSITIVE_INFINITY)).toBe("+Inf")
    expect(formatSampleValue(Number.NEGATIVE_INFINITY)).toBe("-Inf")
    expect(formatSampleValue(Number.NaN)).toBe("NaN")
    expect(formatSampleValue(12n)).toBe("12")
  })

  it("keeps one type per family when names collide", async () => {
    const counter = Metric.counter("test_render_collision", { incremental: true })
    const gauge = Metric.gauge("test_render_collision").pipe(Metric.tagged("kind", "gauge"))
    await Effect.runPromise(Effect.all([Metric.increment(counter), Metric.set(gauge, 5)]))
    const text = renderPrometheusText(await Effect.runPromise(Metric.snapshot))
    const typeLines = text.split("\n").filter((line) => line.startsWith("# TYPE test_render_collision "))
    expect(typeLines).toHaveLength(1)
    expect(family(text, "test_render_collision").metrics).toHaveLength(1)
  })
})
