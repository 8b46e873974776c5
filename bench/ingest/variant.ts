/**
 * Entry point of one variant process, started by bench/ingest.ts with the settings in its
 * environment. Each variant runs in a process of its own so that its CPU time and peak memory
 * are its own. Prints the result as the last stdout line.
 */
import process from "node:process"
import type { BacklogShape } from "./Backlog.ts"
import { readBenchSettings } from "./BenchSettings.ts"
import { runDatabaseAloneVariant } from "./DatabaseAloneVariant.ts"
import { runHandWrittenVariant } from "./HandWrittenVariant.ts"
import { runNaiveVariant } from "./NaiveVariant.ts"
import { runPipelineVariant } from "./PipelineVariant.ts"
import { printResult, type VariantResult } from "./VariantResult.ts"

const shape: BacklogShape = {
  readings: Number(process.env["BENCH_READINGS"]),
  readingsPerMessage: Number(process.env["BENCH_PER_MESSAGE"]),
  sensors: Number(process.env["BENCH_SENSORS"]),
  metrics: (process.env["BENCH_METRICS"] ?? "").split(","),
  firstTs: Number(process.env["BENCH_FIRST_TS"])
}
const settings = readBenchSettings()
const variants: Record<string, () => Promise<VariantResult>> = {
  "pipeline": () => runPipelineVariant(shape),
  "hand-written": () => runHandWrittenVariant(shape, settings),
  "naive": () => runNaiveVariant(settings),
  "database-alone": () => runDatabaseAloneVariant(shape, settings)
}
const name = process.env["BENCH_VARIANT"] ?? ""
const run = variants[name]
if (run === undefined) throw new Error(`BENCH_VARIANT = ${JSON.stringify(name)}: expected one of ${Object.keys(variants).join(", ")}`)
printResult(await run())
// kafkajs and PGlite may keep timers alive after their clients closed.
process.exit(0)
