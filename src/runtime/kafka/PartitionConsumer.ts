import { Deferred, Duration, Effect, Either, Fiber, FiberMap, Option, Runtime, Schedule, type Scope } from "effect"
import type { Consumer, EachBatchPayload } from "kafkajs"
import { ConsumerProgress } from "../telemetry/ConsumerProgress.ts"
import { KafkaClient } from "./KafkaClient.ts"
import { isRebalanceError, KafkaError } from "./KafkaError.ts"
import {
  type FetchControl,
  type InFlightLimits,
  type MailboxItem,
  type MailboxStatus,
  PartitionMailbox
} from "./PartitionMailbox.ts"

/** Options of the consumer group behind `runPartitionConsumer`. */
export interface ConsumerOptions {
  readonly groupId: string
  readonly topics: ReadonlyArray<string>
  /** Maximum time the broker waits to respond to a fetch that has no data yet (kafkajs `maxWaitTimeInMs`). */
  readonly fetchMaxWaitMillis: number
  /** Bytes the broker waits for before it responds to a fetch (kafkajs `minBytes`). */
  readonly fetchMinBytes: number
  /** Maximum bytes one fetch returns for one partition (kafkajs `maxBytesPerPartition`). */
  readonly fetchMaxBytesPerPartition: number
  readonly sessionTimeoutMillis: number
  /** Records and bytes of one partition fetched and not yet written, above which its fetching pauses. */
  readonly inFlight: InFlightLimits
  /** Maximum wait for the workers to write and commit the records they have taken, on a rebalance and at shutdown. */
  readonly drainTimeoutMillis: number
}

/**
 * Result of `AssignedPartition.commit`.
 *
 * - `deferred`: the group is rebalancing, or the commit failed after its retries. The offset is
 *   kept and committed with the partition's next commit, or right after the rebalance when the
 *   partition stays here.
 * - `revoked`: the partition has moved, and its new owner starts from the last committed offset.
 */
export type CommitOutcome = "committed" | "deferred" | "revoked"

/** One partition assigned to this member, with the operations its worker uses. */
export interface AssignedPartition {
  readonly topic: string
  readonly partition: number
  /** Waits for the next fetched records, flush request or wake-up. */
  readonly take: Effect.Effect<MailboxItem>
  /** Puts a wake-up with `token` into the mailbox, for the worker's timers. */
  readonly wake: (token: number) => Effect.Effect<void>
  /** Gives back records that were written or dead-lettered, which may resume fetching. */
  readonly release: (records: number, bytes: number) => Effect.Effect<void>
  /** Pauses fetching of the partition until `unhold`, while a write is being retried. */
  readonly hold: Effect.Effect<void>
  readonly unhold: Effect.Effect<void>
  /** Commits `nextOffset`, the offset after the last record stored, so that consumption resumes there. */
  readonly commit: (nextOffset: string) => Effect.Effect<CommitOutcome>
}

/** A snapshot of one assigned partition. */
export interface PartitionStatus extends MailboxStatus {
  /** Last offset this member committed for the partition, or undefined before its first commit. */
  readonly committedOffset: string | undefined
}

/** The running consumer: its failure signal and the state of its partitions. */
export interface PartitionConsumer<E> {
  /** Fails when kafkajs gave up restarting the consumer or a partition worker failed. Never succeeds. */
  readonly stopped: Effect.Effect<never, KafkaError | E>
  readonly partitions: Effect.Effect<ReadonlyArray<PartitionStatus>>
}

interface WorkerEntry {
  readonly key: string
  readonly topic: string
  readonly partition: number
  readonly mailbox: PartitionMailbox
  /** Serialises the commits of the partition, so that a lower offset never overtakes a higher one. */
  readonly commitLock: Effect.Semaphore
  owned: boolean
  committed: bigint | undefined
  /** An offset whose commit failed and is still owed; the next commit includes it. */
  pendingCommit: bigint | undefined
}

const partitionKey = (topic: string, partition: number) => `${topic}[${partition}]`

/** Retries of a commit that failed with a retriable error, on top of kafkajs's own five. */
const commitRetrySchedule = Schedule.exponential("200 millis").pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.seconds(5))),
  Schedule.upTo("30 seconds")
)

/** Interval of the heartbeats sent while a rebalance waits for the workers to drain. */
const drainHeartbeatInterval = Duration.seconds(3)

/** Maximum wait for kafkajs to leave the group and close its connections at shutdown. */
const disconnectTimeout = Duration.seconds(10)

/**
 * Runs a consumer group over `options.topics` with one worker per assigned partition.
 *
 * kafkajs 2.2.4 calls `eachBatch` for each partition of a fetch and fetches again from a broker
 * only after every batch of its previous fetch was handled. `eachBatch` here only puts the
 * records into the partition's mailbox (`PartitionMailbox`), which pauses the partition's
 * fetching once it contains too much, so a slow partition does not block the others. The worker,
 * `work(partition)`, takes the records in offset order, writes them, and commits through
 * `partition.commit`. Nothing is committed automatically.
 *
 * Assignment: kafkajs emits `GROUP_JOIN` with the member's assignment after every join, before it
 * fetches. A worker starts for each new partition, keeps running for a partition that stays, and
 * is interrupted for a partition that moved (a write in progress rolls back).
 *
 * Revocation: kafkajs has no revocation callback. It learns of a rebalance from a heartbeat,
 * stops fetching, waits for the running `eachBatch` calls, emits `REBALANCING` and joins again,
 * after which a commit under the old generation is rejected. So `eachBatch` sends the heartbeat
 * itself after queueing its records. When that heartbeat reports a rebalance, `eachBatch` asks
 * every worker to write and commit the records it has taken, and returns only afterwards (at
 * most `drainTimeoutMillis`), which holds the rejoin back. kafkajs's own heartbeat can notice
 * first, after a batch without records. Then the `REBALANCING` event asks for the same flush but
 * cannot wait for it, commits that arrive after the rejoin are rejected, and the partition's next
 * owner fetches those records again. A worker with idempotent writes only writes them twice.
 *
 * Closing the scope stops fetching, waits up to `drainTimeoutMillis` for the workers to write and
 * commit the records they have taken, interrupts them, and leaves the group.
 */
export const runPartitionConsumer = <E, R>(
  options: ConsumerOptions,
  work: (partition: AssignedPartition) => Effect.Effect<never, E, R>
): Effect.Effect<PartitionConsumer<E>, KafkaError, KafkaClient | ConsumerProgress | Scope.Scope | R> =>
  Effect.gen(function*() {
    const { kafka } = yield* KafkaClient
    const progress = yield* ConsumerProgress
    const runtime = yield* Effect.runtime<R>()
    const runSync = Runtime.runSync(runtime)
    const runFork = Runtime.runFork(runtime)
    const runPromise = Runtime.runPromise(runtime)
    const crashed = yield* Deferred.make<never, KafkaError>()
    const workers = yield* FiberMap.make<string, never, E>()
    const runWorker = yield* FiberMap.runtime(workers)<R>()
    const entries = new Map<string, WorkerEntry>()
    /** Fibers of revoked workers still stopping, awaited before a worker for the same partition starts. */
    const stopping = new Map<string, Fiber.RuntimeFiber<never, E>>()
    let closing = false

    const consumer: Consumer = kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: options.fetchMaxWaitMillis,
      minBytes: options.fetchMinBytes,
      maxBytesPerPartition: options.fetchMaxBytesPerPartition,
      sessionTimeout: options.sessionTimeoutMillis,
      // The broker waits this long for every member to join again; a draining member needs up to
      // drainTimeoutMillis before it does.
      rebalanceTimeout: Math.max(60_000, options.drainTimeoutMillis + 30_000),
      allowAutoTopicCreation: false
    })

    /** Runs `pause` or `resume`, which throw while kafkajs restarts the consumer and has no group. */
    const fetchControl = (topic: string, partition: number): FetchControl => {
      const call = (action: "pause" | "resume") => {
        try {
          consumer[action]([{ topic, partitions: [partition] }])
        } catch {
          // No consumer group right now: the next one starts with every partition resumed.
        }
      }
      return { pause: () => call("pause"), resume: () => call("resume") }
    }

    const commitEntry = (entry: WorkerEntry, requested: bigint): Effect.Effect<CommitOutcome> =>
      entry.commitLock.withPermits(1)(Effect.gen(function*() {
        const offset = entry.pendingCommit !== undefined && entry.pendingCommit > requested ? entry.pendingCommit : requested
        if (entry.committed !== undefined && offset <= entry.committed) return "committed" as const
        if (!entry.owned) return "revoked" as const
        const result = yield* Effect.tryPromise({
          // NOTE: kafkajs returns without committing once its runner has stopped (while it
          // restarts after a crash); the CRASH handler revokes every partition at that point.
          try: () => consumer.commitOffsets([{ topic: entry.topic, partition: entry.partition, offset: offset.toString() }]),
          catch: (cause) => new KafkaError({ operation: `commit ${entry.key}@${offset}`, cause })
        }).pipe(
          Effect.retry({ schedule: commitRetrySchedule, while: (error) => error.retriable && entry.owned }),
          Effect.either
        )
        if (Either.isRight(result)) {
          entry.committed = offset
          entry.pendingCommit = undefined
          yield* progress.committed(entry.topic, entry.partition, offset.toString())
          return "committed" as const
        }
        entry.pendingCommit = offset
        if (!entry.owned) return "revoked" as const
        const error = result.left
        yield* (isRebalanceError(error.cause)
          ? Effect.logInfo("Commit deferred until the consumer group has rebalanced")
          : Effect.logWarning("Commit failed after retries; the next commit of the partition includes it")).pipe(
            Effect.annotateLogs({ topic: entry.topic, partition: entry.partition, offset: offset.toString(), error: error.message })
          )
        return "deferred" as const
      }).pipe(Effect.withSpan("PartitionConsumer.commit", { attributes: { topic: entry.topic, partition: entry.partition } })))

    const startWorker = (topic: string, partition: number): WorkerEntry => {
      const key = partitionKey(topic, partition)
      const mailbox = runSync(PartitionMailbox.make(topic, partition, options.inFlight, fetchControl(topic, partition)))
      const entry: WorkerEntry = {
        key,
        topic,
        partition,
        mailbox,
        commitLock: Effect.unsafeMakeSemaphore(1),
        owned: true,
        committed: undefined,
        pendingCommit: undefined
      }
      entries.set(key, entry)
      // A partition that was paused when it was revoked from here must not stay paused.
      fetchControl(topic, partition).resume()
      const assigned: AssignedPartition = {
        topic,
        partition,
        take: mailbox.take,
        wake: (token) => mailbox.wake(token),
        release: (records, bytes) => mailbox.release(records, bytes),
        hold: mailbox.hold,
        unhold: mailbox.unhold,
        commit: (nextOffset) => commitEntry(entry, BigInt(nextOffset))
      }
      const previous = stopping.get(key)
      runWorker(
        key,
        Effect.zipRight(previous === undefined ? Effect.void : Fiber.await(previous), work(assigned)).pipe(
          Effect.tapErrorCause((cause) => Effect.logError("Partition worker failed; the consumer stops", cause)),
          Effect.annotateLogs({ topic, partition })
        )
      )
      return entry
    }

    const revokeWorker = (entry: WorkerEntry) => {
      entry.owned = false
      entries.delete(entry.key)
      entry.mailbox.resumeNow()
      const fiber = FiberMap.unsafeGet(workers, entry.key)
      if (Option.isSome(fiber)) {
        stopping.set(entry.key, fiber.value)
        fiber.value.addObserver(() => {
          if (stopping.get(entry.key) === fiber.value) stopping.delete(entry.key)
        })
      }
      runFork(FiberMap.remove(workers, entry.key))
    }

    /** Asks every worker to write and commit the records it has taken, and waits for them or for the timeout. */
    const drainAll = (reason: string, keepAlive: Effect.Effect<void>) =>
      Effect.gen(function*() {
        const owned = [...entries.values()]
        if (owned.length === 0) return
        const heldRecords = owned.reduce((sum, entry) => sum + entry.mailbox.status().records, 0)
        const drained = yield* Effect.forEach(owned, (entry) => entry.mailbox.flush, { concurrency: "unbounded", discard: true }).pipe(
          Effect.raceFirst(Effect.forever(Effect.zipRight(Effect.sleep(drainHeartbeatInterval), keepAlive))),
          Effect.interruptible,
          Effect.timeoutOption(Duration.millis(options.drainTimeoutMillis))
        )
        const annotations = { reason, partitions: owned.length, heldRecords, timeoutMillis: options.drainTimeoutMillis }
        yield* Option.isSome(drained)
          ? Effect.logInfo("Partitions drained: held records written and committed").pipe(Effect.annotateLogs(annotations))
          : Effect.logWarning("Partitions not drained in time; uncommitted records are fetched again by their next owner").pipe(
            Effect.annotateLogs(annotations)
          )
      }).pipe(Effect.withSpan("PartitionConsumer.drain", { attributes: { reason } }))

    /** Runs a kafkajs event handler; an exception must not escape into kafkajs's join or fetch code. */
    const onEvent = <A>(handler: (event: A) => void) => (event: A) => {
      try {
        handler(event)
      } catch (error) {
        runFork(Effect.logError("Kafka consumer event handler failed", error))
      }
    }

    consumer.on(consumer.events.GROUP_JOIN, onEvent((event) => {
      const assignment = event.payload.memberAssignment as Record<string, ReadonlyArray<number>>
      const assigned = new Map<string, { topic: string; partition: number }>()
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) assigned.set(partitionKey(topic, partition), { topic, partition })
      }
      const revoked: Array<string> = []
      for (const entry of [...entries.values()]) {
        if (!assigned.has(entry.key)) {
          revoked.push(entry.key)
          revokeWorker(entry)
        }
      }
      const added: Array<string> = []
      for (const [key, { partition, topic }] of assigned) {
        const existing = entries.get(key)
        if (existing === undefined) {
          if (closing) continue
          added.push(key)
          startWorker(topic, partition)
        } else if (existing.pendingCommit !== undefined) {
          runFork(commitEntry(existing, existing.pendingCommit))
        }
      }
      runFork(
        Effect.logInfo("Joined consumer group").pipe(
          Effect.annotateLogs({
            groupId: event.payload.groupId,
            memberId: event.payload.memberId,
            assignment: JSON.stringify(assignment),
            added: added.join(", "),
            revoked: revoked.join(", ")
          }),
          Effect.zipRight(progress.assigned(event.payload.memberId, assignment))
        )
      )
    }))

    consumer.on(consumer.events.REBALANCING, onEvent((event) => {
      runFork(
        Effect.logInfo("Consumer group is rebalancing; flushing every partition").pipe(
          Effect.annotateLogs({ groupId: event.payload.groupId, memberId: event.payload.memberId })
        )
      )
      for (const entry of entries.values()) {
        runFork(Effect.timeout(entry.mailbox.flush, Duration.millis(options.drainTimeoutMillis)))
      }
    }))

    consumer.on(consumer.events.CRASH, onEvent((event) => {
      // kafkajs has already left the group when it reports a crash, so every partition is gone.
      for (const entry of [...entries.values()]) revokeWorker(entry)
      const log = event.payload.restart
        ? Effect.logWarning("Kafka consumer failed and restarts", event.payload.error)
        : Effect.logError("Kafka consumer crashed and stopped", event.payload.error)
      runFork(
        log.pipe(
          Effect.annotateLogs({ groupId: event.payload.groupId, restart: event.payload.restart }),
          Effect.zipRight(progress.crashed(event.payload.restart, String(event.payload.error))),
          Effect.zipRight(
            event.payload.restart
              ? Effect.void
              : Deferred.fail(crashed, new KafkaError({ operation: `consume as ${options.groupId}`, cause: event.payload.error }))
          )
        )
      )
    }))

    const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
      const { batch } = payload
      // At shutdown the records stay unresolved and uncommitted: the next owner fetches them.
      if (closing) return
      const key = partitionKey(batch.topic, batch.partition)
      let entry = entries.get(key)
      if (entry === undefined) {
        runFork(Effect.logWarning("Records of a partition without a worker; starting one").pipe(Effect.annotateLogs({ partition: key })))
        entry = startWorker(batch.topic, batch.partition)
      }
      if (!batch.isEmpty()) {
        runSync(progress.fetched(batch.topic, batch.partition, batch.firstOffset() ?? batch.lastOffset(), batch.highWatermark))
      }
      await runPromise(entry.mailbox.accept(batch.messages))
      payload.resolveOffset(batch.lastOffset())
      try {
        await payload.heartbeat()
      } catch (error) {
        if (isRebalanceError(error)) {
          const keepAlive = Effect.ignore(Effect.tryPromise(() => payload.heartbeat()))
          await runPromise(drainAll("rebalance", keepAlive))
        }
        throw error
      }
    }

    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await consumer.connect()
          await consumer.subscribe({ topics: [...options.topics], fromBeginning: true })
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: 1,
            eachBatch
          })
        },
        catch: (cause) => new KafkaError({ operation: `consume ${options.topics.join(", ")}`, cause })
      }),
      () =>
        Effect.gen(function*() {
          closing = true
          try {
            consumer.pause(options.topics.map((topic) => ({ topic })))
          } catch {
            // The consumer has no group (it crashed), so nothing is being fetched.
          }
          yield* drainAll("shutdown", Effect.void)
          yield* FiberMap.clear(workers).pipe(Effect.interruptible, Effect.timeoutOption(Duration.seconds(5)))
          // Finalizers are uninterruptible, so without `interruptible` the timeout could not cut
          // short a disconnect that waits for a fetch or a broker that does not respond.
          yield* Effect.promise(() => consumer.disconnect()).pipe(
            Effect.interruptible,
            Effect.timeout(disconnectTimeout),
            Effect.tap(() => Effect.logInfo("Kafka consumer left the group").pipe(Effect.annotateLogs({ groupId: options.groupId }))),
            Effect.catchAllCause((cause) => Effect.logWarning("Kafka consumer did not stop cleanly", cause))
          )
        })
    )

    const stopped: Effect.Effect<never, KafkaError | E> = Effect.raceFirst(
      Deferred.await(crashed),
      Effect.zipRight(FiberMap.join(workers), Effect.never)
    )
    const partitions = Effect.sync(() =>
      [...entries.values()].map((entry): PartitionStatus => ({
        ...entry.mailbox.status(),
        committedOffset: entry.committed?.toString()
      }))
    )
    return { stopped, partitions }
  })
