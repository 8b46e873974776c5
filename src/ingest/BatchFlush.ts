import { Clock, Duration, Effect, Schedule } from "effect"
import type { KafkaMessage } from "kafkajs"
import { KafkaProducer } from "../runtime/kafka/KafkaProducer.ts"
import type { AssignedPartition, CommitOutcome } from "../runtime/kafka/PartitionConsumer.ts"
import { withBatchSpan } from "../runtime/telemetry/BatchSpan.ts"
import { writeIsolatingRejections } from "./Bisect.ts"
import { type DeadLetter, toDeadLetterRecord, writeRejectedTag } from "./DeadLetter.ts"
import type { DecodedRecord } from "./DecodedRecord.ts"
import type { IngestConfig } from "./IngestConfig.ts"
import { recordBatchCommitted, recordBatchReassigned, recordDeadLetters, recordRetry } from "./IngestMetrics.ts"
import { IngestStats } from "./IngestStats.ts"
import { SensorDataWriter } from "./SensorDataWriter.ts"
import { classifyWriteFailure, describeFailure } from "./WriteFailure.ts"

/** Dead letters logged one by one per batch; the rest are counted in one line. */
const maxLoggedDeadLetters = 10

/**
 * Delays between attempts of a failed write, dead-letter send or commit: exponential from
 * `INGEST_RETRY_INITIAL_MS`, jittered, at most `INGEST_RETRY_MAX_MS` each, without a limit on
 * attempts, so an outage delays records but loses none.
 */
export const retrySchedule = (config: Pick<IngestConfig, "retryInitialMillis" | "retryMaxMillis">) =>
  Schedule.exponential(Duration.millis(config.retryInitialMillis)).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) => Duration.min(delay, Duration.millis(config.retryMaxMillis)))
  )

/** The offset after the last record of `records`, which a commit stores so that consumption resumes behind them. */
const nextOffsetAfter = (records: ReadonlyArray<{ readonly message: KafkaMessage }>): string =>
  (BigInt(records[records.length - 1]!.message.offset) + 1n).toString()

/**
 * Makes the function that stores one batch of a partition's records and then commits them:
 *
 * 1. writes the readings and sensors of every record in one transaction. A failure that is not
 *    the data's fault is retried (see `WriteFailureClass`) while the partition's fetching is
 *    paused. A failure that the data causes splits the batch until each failing record is alone
 *    (`writeIsolatingRejections`), so the valid records are stored and only the failing ones
 *    are rejected;
 * 2. sends the records that failed to decode or to write to the dead-letter topic, retrying
 *    until the broker acknowledges them;
 * 3. commits the offset after the batch's last record, so nothing is committed before it is
 *    stored or dead-lettered.
 */
export const makeBatchFlush = (config: IngestConfig) =>
  Effect.gen(function*() {
    const writer = yield* SensorDataWriter
    const producer = yield* KafkaProducer
    const stats = yield* IngestStats
    const writePermits = yield* Effect.makeSemaphore(config.writeConcurrency)
    const schedule = retrySchedule(config)
    const writeOptions = { onConflict: config.onConflict, maxRowsPerStatement: config.batchMaxRows }

    /** Retries `effect` while `shouldRetry` holds, logging each failure and holding the partition's fetching meanwhile. */
    const withRetries = <A, E, R>(
      partition: AssignedPartition,
      step: string,
      effect: Effect.Effect<A, E, R>,
      shouldRetry: (error: E) => boolean
    ): Effect.Effect<A, E, R> =>
      Effect.suspend(() => {
        let held = false
        const onFailure = (error: E) =>
          Effect.gen(function*() {
            if (!shouldRetry(error)) return
            const failureClass = classifyWriteFailure(error)
            const log = failureClass === "transient"
              ? Effect.logWarning(`${step} failed, retrying`)
              : Effect.logError(`${step} failed with an error that does not go away by itself; retrying until its cause is fixed`)
            yield* log.pipe(
              Effect.annotateLogs({
                topic: partition.topic,
                partition: partition.partition,
                failureClass,
                error: describeFailure(error)
              })
            )
            yield* stats.recordRetry
            yield* recordRetry(partition.topic, step)
            if (!held) {
              held = true
              yield* partition.hold
            }
          })
        return effect.pipe(
          Effect.tapError(onFailure),
          Effect.retry({ schedule, while: shouldRetry }),
          Effect.ensuring(Effect.suspend(() => (held ? partition.unhold : Effect.void)))
        )
      })

    /** Writes the readings and sensors of `records` in one transaction; fails only when the data is at fault. */
    const writeRecords = (partition: AssignedPartition, records: ReadonlyArray<DecodedRecord>) => {
      const readings = records.flatMap((record) => record.readings)
      const sensors = records.flatMap((record) => record.sensors)
      const attempt = writePermits.withPermits(1)(writer.write(readings, sensors, writeOptions))
      return withRetries(partition, "Write", attempt, (error) => classifyWriteFailure(error) !== "data")
    }

    const sendDeadLetters = (partition: AssignedPartition, letters: ReadonlyArray<DeadLetter>) =>
      Effect.gen(function*() {
        if (letters.length === 0) return
        const deadLetterTopic = `${partition.topic}${config.deadLetterSuffix}`
        // Retried without a limit, so the error channel is empty; `orDie` only states that in the type.
        yield* withRetries(partition, "Dead-letter send", producer.send(deadLetterTopic, letters.map(toDeadLetterRecord)), () => true).pipe(
          Effect.orDie
        )
        yield* recordDeadLetters(partition.topic, letters)
        for (const letter of letters.slice(0, maxLoggedDeadLetters)) {
          yield* Effect.logWarning("Record sent to the dead-letter topic").pipe(
            Effect.annotateLogs({
              topic: partition.topic,
              partition: partition.partition,
              offset: letter.message.offset,
              deadLetterTopic,
              error: letter.errorTag,
              reason: letter.reason
            })
          )
        }
        if (letters.length > maxLoggedDeadLetters) {
          yield* Effect.logWarning("More records of the batch sent to the dead-letter topic").pipe(
            Effect.annotateLogs({ topic: partition.topic, partition: partition.partition, deadLetterTopic, count: letters.length - maxLoggedDeadLetters })
          )
        }
      })

    /** Stores `records` (one partition's, in offset order), dead-letters what cannot be stored, then commits. */
    const flush = (partition: AssignedPartition, records: ReadonlyArray<DecodedRecord>): Effect.Effect<CommitOutcome> =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const writable = records.filter((record) => record.readings.length > 0 || record.sensors.length > 0)
        const written = yield* writeIsolatingRejections(writable, (items) => writeRecords(partition, items))
        if (written.rejected.length > 0) {
          yield* Effect.logWarning("The database rejected records of a batch; the others are stored").pipe(
            Effect.annotateLogs({
              topic: partition.topic,
              partition: partition.partition,
              rejected: written.rejected.length,
              records: writable.length,
              writes: written.attempts
            })
          )
        }
        const rejectedWrites = new Map(written.rejected.map(({ error, item }) => [item, error]))
        const letters: Array<DeadLetter> = []
        for (const record of records) {
          const writeError = rejectedWrites.get(record)
          if (writeError === undefined && record.rejection === undefined) continue
          const reason = writeError === undefined
            ? record.rejection!.reason
            : record.rejection === undefined
            ? describeFailure(writeError)
            : `${describeFailure(writeError)}; ${record.rejection.reason}`
          letters.push({
            topic: partition.topic,
            partition: partition.partition,
            message: record.message,
            errorTag: writeError === undefined ? record.rejection!.errorTag : writeRejectedTag,
            reason
          })
        }
        yield* sendDeadLetters(partition, letters)
        const outcome = yield* partition.commit(nextOffsetAfter(records))
        const readings = writable.reduce((sum, record) => (rejectedWrites.has(record) ? sum : sum + record.readings.length), 0)
        const sensors = writable.reduce((sum, record) => (rejectedWrites.has(record) ? sum : sum + record.sensors.length), 0)
        if (outcome === "revoked") {
          yield* recordBatchReassigned(partition.topic)
        } else {
          const finished = yield* Clock.currentTimeMillis
          yield* recordBatchCommitted(partition.topic, { readings, rows: written.written, sensors }, (finished - started) / 1000)
          yield* stats.record({
            records: records.length,
            readings,
            rows: written.written,
            sensors,
            deadLetters: letters.length,
            rejected: written.rejected.length,
            busyMillis: finished - started
          })
        }
        yield* Effect.annotateCurrentSpan({
          readings,
          rows: written.written,
          deadLetters: letters.length,
          rejected: written.rejected.length,
          commit: outcome
        })
        return outcome
      }).pipe(
        withBatchSpan({ topic: partition.topic, partition: partition.partition, messages: records.map((record) => record.message) }, config.groupId),
        Effect.annotateLogs({
          topic: partition.topic,
          partition: partition.partition,
          batch: `${records[0]?.message.offset}-${records[records.length - 1]?.message.offset}`
        })
      )

    return flush
  })
