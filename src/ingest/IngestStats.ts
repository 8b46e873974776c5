import { Clock, Effect, Ref } from "effect"

/** Running totals of the ingest job since it started. */
export interface IngestTotals {
  /** Kafka records written or dead-lettered, in batches whose offsets were committed or whose commit was deferred. */
  readonly records: number
  readonly readings: number
  readonly rows: number
  readonly sensors: number
  readonly deadLetters: number
  /** Dead letters whose values the database rejected, a part of `deadLetters`. */
  readonly rejected: number
  readonly batches: number
  /** Failed attempts of writes, dead-letter sends and commits that were retried. */
  readonly retries: number
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
  rejected: 0,
  batches: 0,
  retries: 0,
  busyMillis: 0,
  firstBatchStartMillis: undefined,
  firstCommitMillis: undefined,
  lastCommitMillis: undefined
}

/** Counters of handled batches and retries, read by progress output and tests. */
export class IngestStats extends Effect.Service<IngestStats>()("sensor-logger/IngestStats", {
  effect: Effect.gen(function*() {
    const totals = yield* Ref.make(zero)
    return {
      /** Adds one handled batch. */
      record: (batch: Omit<IngestTotals, "batches" | "retries" | "firstBatchStartMillis" | "firstCommitMillis" | "lastCommitMillis">) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(totals, (current) => ({
          records: current.records + batch.records,
          readings: current.readings + batch.readings,
          rows: current.rows + batch.rows,
          sensors: current.sensors + batch.sensors,
          deadLetters: current.deadLetters + batch.deadLetters,
          rejected: current.rejected + batch.rejected,
          batches: current.batches + 1,
          retries: current.retries,
          busyMillis: current.busyMillis + batch.busyMillis,
          firstBatchStartMillis: Math.min(current.firstBatchStartMillis ?? Infinity, now - batch.busyMillis),
          firstCommitMillis: current.firstCommitMillis ?? now,
          lastCommitMillis: now
        }))),
      /** Adds one failed attempt that is retried. */
      recordRetry: Ref.update(totals, (current) => ({ ...current, retries: current.retries + 1 })),
      totals: Ref.get(totals)
    } as const
  })
}) {}
