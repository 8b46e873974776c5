/**
 * How far a consumer group member is behind, partition by partition, and whether it still makes
 * progress. The consumer reports its group membership, every fetched batch and every commit.
 * Lag is the partition's high watermark at the latest fetch minus the consumer's position (the
 * offset after its last commit, or before the first commit the first offset fetched).
 *
 * @module
 */
import { Clock, Effect, Metric } from "effect"

/** Records behind the high watermark, by topic and partition, as of the latest fetch. */
const consumerLag = Metric.gauge("sensor_logger_ingest_consumer_lag", {
  description: "Records between the consumer's position and the partition's high watermark at the latest fetch."
})
const assignedPartitions = Metric.gauge("sensor_logger_ingest_assigned_partitions", {
  description: "Partitions assigned to this consumer group member."
})
const rebalances = Metric.counter("sensor_logger_ingest_rebalances_total", {
  description: "Consumer group joins, one per completed rebalance.",
  incremental: true
})
const consumerRestarts = Metric.counter("sensor_logger_ingest_consumer_restarts_total", {
  description: "Consumer crashes after which kafkajs restarted the consumer.",
  incremental: true
})

/** Lag and progress of one assigned partition. */
export interface PartitionLag {
  readonly topic: string
  readonly partition: number
  readonly lag: number
  /** When the partition last made progress (a commit, or the assignment), in milliseconds since 1970. */
  readonly lastProgressMillis: number
}

/** The member's place in its consumer group. */
export type Membership =
  | { readonly _tag: "Joining" }
  | { readonly _tag: "Member"; readonly memberId: string }
  | { readonly _tag: "Restarting"; readonly reason: string }
  | { readonly _tag: "Stopped"; readonly reason: string }

interface PartitionState {
  highWatermark: bigint | undefined
  position: bigint | undefined
  lastProgressMillis: number
}

const keyOf = (topic: string, partition: number) => `${topic}\u0000${partition}`

const lagOf = (state: PartitionState): number =>
  state.highWatermark === undefined || state.position === undefined || state.highWatermark <= state.position
    ? 0
    : Number(state.highWatermark - state.position)

const lagGauge = (topic: string, partition: number) =>
  Metric.tagged(Metric.tagged(consumerLag, "topic", topic), "partition", String(partition))

/** Lag, progress and membership of the ingest job's consumer, shared by its metrics and readiness. */
export class ConsumerProgress extends Effect.Service<ConsumerProgress>()("sensor-logger/ConsumerProgress", {
  sync: () => {
    const partitions = new Map<string, { readonly topic: string; readonly partition: number; readonly state: PartitionState }>()
    let membership: Membership = { _tag: "Joining" }

    /**
     * Replaces the tracked partitions by a new assignment (topic to partition numbers). A
     * partition that moved elsewhere reports lag 0 from here on, so the sum over the group's
     * members stays the group's lag.
     */
    const assigned = (memberId: string, assignment: Readonly<Record<string, ReadonlyArray<number>>>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const next = new Set<string>()
        for (const [topic, numbers] of Object.entries(assignment)) {
          for (const partition of numbers) {
            const key = keyOf(topic, partition)
            next.add(key)
            if (!partitions.has(key)) {
              partitions.set(key, {
                topic,
                partition,
                state: { highWatermark: undefined, position: undefined, lastProgressMillis: now }
              })
            } else {
              partitions.get(key)!.state.lastProgressMillis = now
            }
          }
        }
        for (const [key, entry] of partitions) {
          if (next.has(key)) continue
          partitions.delete(key)
          yield* Metric.set(lagGauge(entry.topic, entry.partition), 0)
        }
        membership = { _tag: "Member", memberId }
        yield* Metric.increment(rebalances)
        yield* Metric.set(assignedPartitions, partitions.size)
      })

    const update = (topic: string, partition: number, change: (state: PartitionState, now: number) => void) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const key = keyOf(topic, partition)
        let entry = partitions.get(key)
        if (entry === undefined) {
          // A batch can arrive before the join event is handled; it is tracked all the same.
          entry = { topic, partition, state: { highWatermark: undefined, position: undefined, lastProgressMillis: now } }
          partitions.set(key, entry)
        }
        const before = lagOf(entry.state)
        change(entry.state, now)
        const after = lagOf(entry.state)
        // The stall clock starts when lag appears, not at the last commit before an idle spell.
        if (before === 0 && after > 0) entry.state.lastProgressMillis = now
        yield* Metric.set(lagGauge(topic, partition), after)
      })

    return {
      assigned,
      /**
       * Records a fetched batch: its first offset and the partition's high watermark, as decimal
       * strings. The first offset is the position only until the first commit, because fetched
       * records may wait in the partition's mailbox for several fetches before they are written.
       */
      fetched: (topic: string, partition: number, firstOffset: string, highWatermark: string) =>
        update(topic, partition, (state) => {
          state.position ??= BigInt(firstOffset)
          state.highWatermark = BigInt(highWatermark)
        }),
      /** Records a commit of the offsets before `nextOffset`. */
      committed: (topic: string, partition: number, nextOffset: string) =>
        update(topic, partition, (state, now) => {
          state.position = BigInt(nextOffset)
          state.lastProgressMillis = now
        }),
      /** Records a consumer crash. `restart` is true when kafkajs restarts the consumer. */
      crashed: (restart: boolean, reason: string) =>
        Effect.gen(function*() {
          membership = restart ? { _tag: "Restarting", reason } : { _tag: "Stopped", reason }
          if (restart) yield* Metric.increment(consumerRestarts)
        }),
      membership: Effect.sync(() => membership),
      /** Lag of every assigned partition, ordered by topic and partition. */
      lags: Effect.sync((): ReadonlyArray<PartitionLag> =>
        [...partitions.values()]
          .map(({ partition, state, topic }) => ({ topic, partition, lag: lagOf(state), lastProgressMillis: state.lastProgressMillis }))
          .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
      )
    } as const
  }
}) {}

/** Returns the partitions with lag that made no progress for longer than `stallMillis`. */
export const stalledPartitions = (
  lags: ReadonlyArray<PartitionLag>,
  nowMillis: number,
  stallMillis: number
): ReadonlyArray<PartitionLag> => lags.filter((entry) => entry.lag > 0 && nowMillis - entry.lastProgressMillis > stallMillis)
