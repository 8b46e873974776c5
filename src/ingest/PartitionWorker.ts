import { Clock, Deferred, Effect, Option } from "effect"
import type { TimestampRange } from "../domain/Timestamp.ts"
import type { FetchedRecords, MailboxItem } from "../runtime/kafka/PartitionMailbox.ts"
import type { AssignedPartition, CommitOutcome } from "../runtime/kafka/PartitionConsumer.ts"
import { decodeRecords, type DecodedRecord, type IngestTopics } from "./DecodedRecord.ts"

/** When a worker writes the records it has taken. */
export interface BatchLimits {
  /** Metric values (rows) that fill a batch. */
  readonly maxRows: number
  /** Record bytes that fill a batch. */
  readonly maxBytes: number
  /** Longest wait after a batch's first record for more records, in milliseconds. */
  readonly lingerMillis: number
}

/** Delay before a deferred commit is tried again while no records arrive, in milliseconds. */
const deferredCommitRetryMillis = 5_000

/** The records a worker has taken from its mailbox and not yet written, as one growing batch. */
class PendingBatch {
  readonly records: Array<DecodedRecord> = []
  rows = 0
  bytes = 0
  /** When the first record was taken, in milliseconds since 1970. */
  startedMillis = 0

  get isEmpty(): boolean {
    return this.records.length === 0
  }

  add(records: ReadonlyArray<DecodedRecord>, bytes: number, now: number): void {
    if (this.isEmpty) this.startedMillis = now
    for (const record of records) {
      this.records.push(record)
      this.rows += record.rows
    }
    this.bytes += bytes
  }

  isFull(limits: BatchLimits): boolean {
    return this.rows >= limits.maxRows || this.bytes >= limits.maxBytes
  }
}

/**
 * Runs the worker of one assigned partition until it is interrupted (the partition was revoked
 * or the job stops). It takes fetched records in offset order, decodes each fetch as a whole and
 * adds it to the pending batch, which is written by `flush` when it holds `limits.maxRows` rows
 * or `limits.maxBytes` bytes, when its first record has waited `limits.lingerMillis`, or when the
 * consumer asks for a flush (rebalance, shutdown). Several small fetches thus become one write,
 * and the in-batch rule of `INGEST_ON_CONFLICT` spans all of them.
 */
export const runPartitionWorker = (
  partition: AssignedPartition,
  options: {
    readonly topics: IngestTopics
    readonly timestampRange: TimestampRange
    readonly limits: BatchLimits
    readonly flush: (partition: AssignedPartition, records: ReadonlyArray<DecodedRecord>) => Effect.Effect<CommitOutcome>
  }
): Effect.Effect<never> =>
  Effect.gen(function*() {
    let pending = new PendingBatch()
    /** Offset after the last record written, committed again while its commit is deferred. */
    let lastWritten: string | undefined = undefined
    let commitOwed = false

    const writePending = Effect.gen(function*() {
      if (pending.isEmpty) return
      const batch = pending
      pending = new PendingBatch()
      const outcome = yield* options.flush(partition, batch.records)
      lastWritten = (BigInt(batch.records[batch.records.length - 1]!.message.offset) + 1n).toString()
      commitOwed = outcome === "deferred"
      yield* partition.release(batch.records.length, batch.bytes)
    })

    const retryOwedCommit = Effect.gen(function*() {
      if (!commitOwed || lastWritten === undefined) return
      commitOwed = (yield* partition.commit(lastWritten)) === "deferred"
    })

    const addRecords = (fetched: FetchedRecords) =>
      Effect.gen(function*() {
        const decoded = decodeRecords(partition.topic, fetched.messages, options.topics, options.timestampRange)
        pending.add(decoded, fetched.bytes, yield* Clock.currentTimeMillis)
        if (pending.isFull(options.limits)) yield* writePending
      })

    const nextItem: Effect.Effect<Option.Option<MailboxItem>> = Effect.gen(function*() {
      if (!pending.isEmpty) {
        const waited = (yield* Clock.currentTimeMillis) - pending.startedMillis
        return yield* partition.takeWithin(options.limits.lingerMillis - waited)
      }
      if (commitOwed) return yield* partition.takeWithin(deferredCommitRetryMillis)
      return Option.some(yield* partition.take)
    })

    while (true) {
      const item = yield* nextItem
      if (Option.isNone(item)) {
        // The linger of the pending batch is over, or an owed commit is due again.
        yield* writePending
        yield* retryOwedCommit
        continue
      }
      if (item.value._tag === "Flush") {
        yield* writePending
        yield* retryOwedCommit
        yield* Deferred.succeed(item.value.done, undefined)
        continue
      }
      yield* addRecords(item.value)
    }
  })
