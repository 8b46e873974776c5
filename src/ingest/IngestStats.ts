import { Clock, Effect, Ref } from "effect"

/** Running totals of the ingest job since it started. */
export interface IngestTotals {
  readonly records: number
  readonly readings: number
  readonly rows: number
  readonly sensors: number
  readonly deadLetters: number
  readonly batches: number
  /** Time spent handling the committed batches (decode, write, dead letters, commit), in milliseconds. */
  readonly busyMillis: number
  /** When the earliest committed batch started, in milliseconds since 1970; undefined before the first commit. */
  readonly firstBatchStartMillis: number | undefined
  /** When the first batch was committed, in milliseconds since 1970; undefined before it. */
  readonly firstCommitMillis: number | undefined
  /** When the latest batch was committed, in milliseconds since 1970; undefined before it. */
  readonly lastCommitMillis: number | undefined
}

const zero: IngestTotals = {
  records: 0,
  readings: 0,
  rows: 0,
  sensors: 0,
  deadLetters: 0,
  batches: 0,
  busyMillis: 0,
  firstBatchStartMillis: undefined,
  firstCommitMillis: undefined,
  lastCommitMillis: undefined
}

/** Counters of committed batches, read by progress output and tests. */
export class IngestStats extends Effect.Service<IngestStats>()("sensor-logger/IngestStats", {
  effect: Effect.gen(function*() {
    const totals = yield* Ref.make(zero)
    return {
      /** Adds one committed batch. */
      record: (batch: Omit<IngestTotals, "batches" | "firstBatchStartMillis" | "firstCommitMillis" | "lastCommitMillis">) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(totals, (current) => ({
          records: current.records + batch.records,
          readings: current.readings + batch.readings,
          rows: current.rows + batch.rows,
          sensors: current.sensors + batch.sensors,
          deadLetters: current.deadLetters + batch.deadLetters,
          batches: current.batches + 1,
          busyMillis: current.busyMillis + batch.busyMillis,
          firstBatchStartMillis: Math.min(current.firstBatchStartMillis ?? Infinity, now - batch.busyMillis),
          firstCommitMillis: current.firstCommitMillis ?? now,
          lastCommitMillis: now
        }))),
      totals: Ref.get(totals)
    } as const
  })
}) {}
