import { Deferred, Effect, Queue } from "effect"
import type { KafkaMessage } from "kafkajs"

/** The records of one partition that one fetch returned, in offset order. */
export interface FetchedRecords {
  readonly _tag: "Records"
  readonly messages: ReadonlyArray<KafkaMessage>
  /** Bytes of the records' keys, values and headers, as counted against the in-flight limit. */
  readonly bytes: number
}

/**
 * A request to write and commit every record taken from the mailbox so far. The worker completes
 * `done` once those records are committed (or could not be, see `AssignedPartition.commit`).
 */
export interface FlushRequest {
  readonly _tag: "Flush"
  readonly done: Deferred.Deferred<void>
}

/**
 * A timer of the worker has fired. The worker's timers put this item into the mailbox, rather
 * than time out a `take`: an interrupted take can lose the item it was handed at that moment.
 */
export interface WakeUp {
  readonly _tag: "WakeUp"
  /** The value the worker gave when it set the timer, so that it can ignore a timer it has cancelled. */
  readonly token: number
}

export type MailboxItem = FetchedRecords | FlushRequest | WakeUp

/** How much of one partition may be fetched and not yet written before its fetching pauses. */
export interface InFlightLimits {
  readonly maxRecords: number
  readonly maxBytes: number
}

/** A snapshot of one partition's mailbox, for tests, logs and metrics. */
export interface MailboxStatus {
  readonly topic: string
  readonly partition: number
  /** Records fetched and not yet released by the worker (in the mailbox or being written). */
  readonly records: number
  readonly bytes: number
  /** Highest `records` and `bytes` since the mailbox was created. */
  readonly peakRecords: number
  readonly peakBytes: number
  /** Fetches whose records were accepted (at least one record new). */
  readonly fetches: number
  /** Times fetching of the partition was paused. */
  readonly pauses: number
  readonly paused: boolean
  /** Offset after the last record accepted, or undefined before the first. */
  readonly nextOffset: string | undefined
}

/** Pauses and resumes the fetching of one partition (kafkajs `consumer.pause` and `resume`). */
export interface FetchControl {
  readonly pause: () => void
  readonly resume: () => void
}

/** Estimates the bytes a record takes in memory from its key, value and header values. */
export const recordBytes = (message: KafkaMessage): number => {
  let bytes = (message.key?.length ?? 0) + (message.value?.length ?? 0)
  for (const name in message.headers) {
    const value = message.headers[name]
    bytes += name.length
    if (Array.isArray(value)) for (const item of value) bytes += item.length
    else if (value !== undefined) bytes += value.length
  }
  return bytes
}

/**
 * The mailbox of one partition's worker: fetched records in offset order, with the records and
 * bytes in flight counted against `limits`.
 *
 * `accept` does not wait for the worker, because it runs inside kafkajs's `eachBatch`, which
 * blocks every partition fetched from the same broker while it runs. Instead, once the partition has `limits.maxRecords`
 * records or `limits.maxBytes` bytes in flight, its fetching pauses, and it resumes when the
 * worker has released both below half the limits. kafkajs drops the data of a paused partition
 * from a fetch that was already under way, and each fetch returns at most one batch per
 * partition, so a partition contains at most its limits plus one fetch (`fetchMaxBytesPerPartition`,
 * or one record batch when a single batch is larger).
 */
export class PartitionMailbox {
  private records = 0
  private bytes = 0
  private peakRecords = 0
  private peakBytes = 0
  private fetches = 0
  private pauses = 0
  private paused = false
  private holds = 0
  private nextOffset: bigint | undefined = undefined

  private constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly limits: InFlightLimits,
    private readonly queue: Queue.Queue<MailboxItem>,
    private readonly fetch: FetchControl
  ) {}

  /**
   * Creates an empty mailbox. The queue's capacity is not reached while the pause works, because
   * every item contains at least one record and fetching pauses before `maxRecords` are queued.
   */
  static make(topic: string, partition: number, limits: InFlightLimits, fetch: FetchControl): Effect.Effect<PartitionMailbox> {
    return Effect.map(
      Queue.bounded<MailboxItem>(limits.maxRecords + 64),
      (queue) => new PartitionMailbox(topic, partition, limits, queue, fetch)
    )
  }

  /**
   * Queues the records of one fetch and returns how many were new. Records below the offset
   * after the last accepted one are dropped: kafkajs fetches a kept partition again from its
   * committed offset after every rebalance, and those records are already here.
   */
  accept(messages: ReadonlyArray<KafkaMessage>): Effect.Effect<number> {
    return Effect.suspend(() => {
      const fresh = this.nextOffset === undefined
        ? messages
        : messages.filter((message) => BigInt(message.offset) >= this.nextOffset!)
      if (fresh.length === 0) return Effect.succeed(0)
      let bytes = 0
      for (const message of fresh) bytes += recordBytes(message)
      this.fetches += 1
      this.records += fresh.length
      this.bytes += bytes
      this.peakRecords = Math.max(this.peakRecords, this.records)
      this.peakBytes = Math.max(this.peakBytes, this.bytes)
      this.nextOffset = BigInt(fresh[fresh.length - 1]!.offset) + 1n
      if (this.records >= this.limits.maxRecords || this.bytes >= this.limits.maxBytes) this.pause()
      return Effect.as(Queue.offer(this.queue, { _tag: "Records", messages: fresh, bytes }), fresh.length)
    })
  }

  /** Waits for the next item. */
  get take(): Effect.Effect<MailboxItem> {
    return Queue.take(this.queue)
  }

  /** Puts a `WakeUp` with `token` into the mailbox, behind the items already there. */
  wake(token: number): Effect.Effect<void> {
    return Effect.asVoid(Queue.offer(this.queue, { _tag: "WakeUp", token }))
  }

  /** Asks the worker to write and commit everything accepted so far, and waits until it has. */
  get flush(): Effect.Effect<void> {
    return Effect.flatMap(Deferred.make<void>(), (done) =>
      Effect.zipRight(Queue.offer(this.queue, { _tag: "Flush", done }), Deferred.await(done)))
  }

  /** Gives back records the worker has written (or dead-lettered), resuming fetching below the low watermark. */
  release(records: number, bytes: number): Effect.Effect<void> {
    return Effect.sync(() => {
      this.records = Math.max(0, this.records - records)
      this.bytes = Math.max(0, this.bytes - bytes)
      this.resumeIfDrained()
    })
  }

  /** Pauses fetching until `unhold`, whatever the records in flight, while a write is being retried. */
  get hold(): Effect.Effect<void> {
    return Effect.sync(() => {
      this.holds += 1
      this.pause()
    })
  }

  get unhold(): Effect.Effect<void> {
    return Effect.sync(() => {
      this.holds = Math.max(0, this.holds - 1)
      this.resumeIfDrained()
    })
  }

  /** Resumes fetching unconditionally, so that a revoked partition assigned here again is not left paused. */
  resumeNow(): void {
    if (!this.paused) return
    this.paused = false
    this.fetch.resume()
  }

  status(): MailboxStatus {
    return {
      topic: this.topic,
      partition: this.partition,
      records: this.records,
      bytes: this.bytes,
      peakRecords: this.peakRecords,
      peakBytes: this.peakBytes,
      fetches: this.fetches,
      pauses: this.pauses,
      paused: this.paused,
      nextOffset: this.nextOffset?.toString()
    }
  }

  private pause(): void {
    if (this.paused) return
    this.paused = true
    this.pauses += 1
    this.fetch.pause()
  }

  private resumeIfDrained(): void {
    if (!this.paused || this.holds > 0) return
    if (this.records * 2 > this.limits.maxRecords || this.bytes * 2 > this.limits.maxBytes) return
    this.paused = false
    this.fetch.resume()
  }
}
