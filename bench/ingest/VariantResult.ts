import process from "node:process"

/** Figures of one ingest variant over one backlog, as a variant process prints them on its last stdout line. */
export interface VariantResult {
  readonly variant: string
  readonly readings: number
  /** Metric values written: readings times metrics per reading. */
  readonly rows: number
  /** Wall time from the first fetched record (or first statement) to the last commit. */
  readonly seconds: number
  /**
   * CPU time of the variant's process, user plus system, from its first fetched record (the
   * pipeline: from the moment its layers are built and its consumer joins) to the last commit.
   */
  readonly cpuSeconds: number
  /** Peak resident set size of the variant's process over its whole run, in MiB. */
  readonly peakRssMiB: number
  /** Peak V8 heap in use, sampled every 100 ms, in MiB. */
  readonly peakHeapMiB: number
  /** Versions of TimescaleDB and PostgreSQL the variant wrote to. */
  readonly timescaledb: string
  readonly database: "embedded" | "server"
}

const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10

/**
 * Samples the heap every 100 ms and measures CPU time from the call (or the last `markStart`) to `stop`. The peak RSS
 * comes from the operating system (`maxRSS`), so it also covers the allocations between samples.
 */
export const startMeter = () => {
  let peakHeap = process.memoryUsage().heapUsed
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)
  }, 100)
  sampler.unref()
  let cpuAtStart = process.cpuUsage()
  return {
    /** Restarts the CPU measurement, for a variant that learns when its first record arrived. */
    markStart: () => {
      cpuAtStart = process.cpuUsage()
    },
    stop: () => {
      clearInterval(sampler)
      const cpu = process.cpuUsage(cpuAtStart)
      return {
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        // maxRSS is in KiB.
        peakRssMiB: mib(process.resourceUsage().maxRSS * 1024),
        peakHeapMiB: mib(peakHeap)
      }
    }
  }
}

/** Marker before the JSON result on a variant's stdout, so log lines never parse as the result. */
export const resultMarker = "BENCH-RESULT "

export const printResult = (result: VariantResult) => {
  process.stdout.write(`${resultMarker}${JSON.stringify(result)}\n`)
}
