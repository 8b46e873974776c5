/** Concurrent HTTP clients for the query benchmark, measuring latency per request. */
import { performance } from "node:perf_hooks"

export interface LoadResult {
  readonly requests: number
  readonly failures: number
  /** Status and body start of the first failed request, to show what went wrong. */
  readonly firstFailure: string | undefined
  readonly p50Millis: number
  readonly p99Millis: number
  readonly requestsPerSecond: number
  /** Mean response body size in bytes, to show the requests returned data. */
  readonly meanBytes: number
}

const percentile = (sorted: ReadonlyArray<number>, fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN

/**
 * Runs `clients` loops that each request `nextUrl(i)` one after another for `seconds`, after
 * `warmup` requests that are not measured. Every request reads its whole body.
 */
export const runHttpLoad = async (
  nextUrl: (index: number) => string,
  options: { readonly clients: number; readonly seconds: number; readonly warmup: number }
): Promise<LoadResult> => {
  for (let index = 0; index < options.warmup; index++) await (await fetch(nextUrl(index))).arrayBuffer()

  const latencies: Array<number> = []
  let failures = 0
  let firstFailure: string | undefined
  let bytes = 0
  let counter = options.warmup
  const deadline = performance.now() + options.seconds * 1000
  const started = performance.now()
  const client = async () => {
    while (performance.now() < deadline) {
      const url = nextUrl(counter++)
      const begin = performance.now()
      const response = await fetch(url)
      const body = await response.arrayBuffer()
      latencies.push(performance.now() - begin)
      bytes += body.byteLength
      if (!response.ok) {
        failures += 1
        firstFailure ??= `${response.status} ${Buffer.from(body).toString("utf8").slice(0, 200)} (${url})`
      }
    }
  }
  await Promise.all(Array.from({ length: options.clients }, client))
  const elapsed = (performance.now() - started) / 1000
  const sorted = [...latencies].sort((a, b) => a - b)
  return {
    requests: latencies.length,
    failures,
    firstFailure,
    p50Millis: percentile(sorted, 0.5),
    p99Millis: percentile(sorted, 0.99),
    requestsPerSecond: latencies.length / elapsed,
    meanBytes: latencies.length === 0 ? 0 : bytes / latencies.length
  }
}
