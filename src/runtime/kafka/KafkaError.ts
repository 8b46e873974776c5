import { Data } from "effect"

/**
 * A failed call to the Kafka cluster. `retriable` follows kafkajs's own classification of the
 * cause (a broker restarting or a rebalance is retriable, an authorization failure is not).
 */
export class KafkaError extends Data.TaggedError("KafkaError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  get retriable(): boolean {
    const cause = this.cause as { retriable?: unknown } | null
    return typeof cause === "object" && cause !== null && cause.retriable === true
  }

  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Kafka ${this.operation} failed: ${reason}`
  }
}
