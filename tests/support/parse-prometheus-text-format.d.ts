/**
 * Types of parse-prometheus-text-format 1.1.1, which ships none. The shapes follow its README:
 * values stay strings, as in prom2json.
 */
declare module "parse-prometheus-text-format" {
  export interface PrometheusSample {
    readonly value?: string
    readonly labels?: Readonly<Record<string, string>>
    /** Histograms: cumulative count by upper bound (`le`), `+Inf` included. */
    readonly buckets?: Readonly<Record<string, string>>
    /** Summaries: value by quantile. */
    readonly quantiles?: Readonly<Record<string, string>>
    readonly count?: string
    readonly sum?: string
  }

  export interface PrometheusFamily {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<PrometheusSample>
  }

  /** Parses a text exposition; throws on a malformed line. */
  export default function parsePrometheusTextFormat(text: string): Array<PrometheusFamily>
}
