import { Deferred, Effect, Fiber } from "effect"
import type { TimestampRange } from "../domain/Timestamp.ts"
import type { FetchedRecords } from "../runtime/kafka/PartitionMailbox.ts"
import type { AssignedPartition, CommitOutcome } from "../runtime/kafka/PartitionConsumer.ts"
import { decodeRecords, type DecodedRecord, type IngestTopics } from "./DecodedRecord.ts"
import { recordBatchFetched } from "./IngestMetrics.ts"

/** When a worker writes the records it has taken. */
export interface BatchLimits {
  /** Metric values (rows) that fill a batch. */
  readonly maxRows: number
  /** Record bytes that fill a batch. */
  readonly maxBytes: number
  /** Maximum wait after a batch's first record for more records, in milliseconds. */
  readonly lingerMillis: number
}

/** Delay before a deferred commit is tried again while no records arrive, in milliseconds. */
const deferredCommitRetryMillis = 5_000

/** The records a worker has taken from its mailbox and not yet written, as one growing batch. */
class PendingBatch {
  readonly records: Array<DecodedRecord> = []
  rows = 0
  bytes = 0

  get isEmpty(): boolean {
    return this.records.length === 0
  }

  add(records: ReadonlyArray<DecodedRecord>, bytes: number): void {
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
 * adds it to the pending batch. `flush` writes the batch when it contains `limits.maxRows` rows or
 * `limits.maxBytes` bytes, when its first record has waited `limits.lingerMillis`, or when the
 * consumer requests a flush (rebalance, shutdown). Several small fetches thus become one write,
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
    /** The one timer that is set (the linger of `pending`, or the retry of an owed commit), and its token. */
    let timer: Fiber.RuntimeFiber<void> | undefined = undefined
    let timerToken = 0

    const cancelTimer = Effect.suspend(() => {
      const running = timer
      timer = undefined
      timerToken += 1
      return running === undefined ? Effect.void : Fiber.interrupt(running)
    })

    /** Sets the timer, replacing any other. A wake-up of a cancelled timer carries an old token and is ignored. */
    const setTimer = (millis: number) =>
      Effect.gen(function*() {
        yield* cancelTimer
        const token = timerToken
        timer = yield* Effect.fork(Effect.zipRight(Effect.sleep(millis), partition.wake(token)))
      })

    const writePending = Effect.gen(function*() {
      yield* cancelTimer
      if (!pending.isEmpty) {
        const batch = pending
        pending = new PendingBatch()
        const outcome = yield* options.flush(partition, batch.records)
        lastWritten = (BigInt(batch.records[batch.records.length - 1]!.message.offset) + 1n).toString()
        commitOwed = outcome === "deferred"
        yield* partition.release(batch.records.length, batch.bytes)
      } else if (commitOwed && lastWritten !== undefined) {
        commitOwed = (yield* partition.commit(lastWritten)) === "deferred"
      }
      if (commitOwed) yield* setTimer(deferredCommitRetryMillis)
    })

    const addRecords = (fetched: FetchedRecords) =>
      Effect.gen(function*() {
        yield* recordBatchFetched(partition.topic, fetched.messages.length)
        // No span here: a fetch belongs to no batch yet, so its span would start a trace of its own.
        const decoded = decodeRecords(partition.topic, fetched.messages, options.topics, options.timestampRange)
        const first = pending.isEmpty
        pending.add(decoded, fetched.bytes)
        if (pending.isFull(options.limits)) return yield* writePending
        if (first) yield* setTimer(options.limits.lingerMillis)
      })

    while (true) {
      const item = yield* partition.take
      switch (item._tag) {
        case "Records": {
          yield* addRecords(item)
          break
        }
        case "Flush": {
          yield* writePending
          yield* Deferred.succeed(item.done, undefined)
          break
        }
        case "WakeUp": {
          // The linger of the pending batch is over, or an owed commit is due again.
          if (item.token === timerToken) yield* writePending
          break
        }
      }
    }
  })
