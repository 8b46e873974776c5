import process from "node:process"

/**
 * Settings shared by the parent and every variant process. The parent passes them as the
 * ingest job's own variables (`INGEST_CONCURRENCY` and so on), so the pipeline and the
 * hand-written consumer fetch with the same limits and write statements of the same size.
 */
export interface BenchSettings {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  readonly databaseUrl: string | undefined
  readonly concurrency: number
  readonly fetchMinBytes: number
  readonly fetchMaxBytes: number
  readonly fetchMaxWaitMillis: number
  readonly maxRows: number
  /** Messages the naive consumer handles before it stops; its rate is measured over them. */
  readonly naiveMessages: number
}

const required = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`${name} is not set; variant processes are started by bench/ingest.ts`)
  return value
}

const integer = (name: string): number => {
  const value = Number(required(name))
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} = ${process.env[name]}: expected a positive integer`)
  return value
}

/** Reads the settings from the environment the parent gave the variant process. */
export const readBenchSettings = (): BenchSettings => ({
  brokers: required("KAFKA_BROKERS").split(","),
  topic: required("KAFKA_READINGS_TOPIC"),
  databaseUrl: process.env["DATABASE_URL"] || undefined,
  concurrency: integer("INGEST_CONCURRENCY"),
  fetchMinBytes: integer("INGEST_FETCH_MIN_BYTES"),
  fetchMaxBytes: integer("INGEST_FETCH_MAX_BYTES"),
  fetchMaxWaitMillis: integer("INGEST_FETCH_MAX_WAIT_MS"),
  maxRows: integer("INGEST_BATCH_MAX_ROWS"),
  naiveMessages: integer("BENCH_NAIVE_MESSAGES")
})
