import { Data } from "effect"

/** Returns the error and every error it wraps through `cause`, outermost first. */
const causeChain = (error: unknown): Array<Record<string, unknown>> => {
  const chain: Array<Record<string, unknown>> = []
  let current: unknown = error
  while (typeof current === "object" && current !== null && chain.length < 10 && !chain.includes(current as never)) {
    chain.push(current as Record<string, unknown>)
    current = (current as { cause?: unknown }).cause
  }
  return chain
}

/**
 * Returns the Kafka protocol error type (`REBALANCE_IN_PROGRESS`, `ILLEGAL_GENERATION`, …) of a kafkajs
 * error or of an error it wraps. kafkajs wraps a protocol error that exhausted its own retries in
 * `KafkaJSNumberOfRetriesExceeded` or `KafkaJSNonRetriableError`, with the original as `cause`.
 */
export const kafkaErrorType = (error: unknown): string | undefined => {
  for (const link of causeChain(error)) {
    if (typeof link.type === "string") return link.type
  }
  return undefined
}

/**
 * Protocol errors after which the member has to join the group again: the group is rebalancing,
 * its generation is over, the member is unknown, or the coordinator moved. A commit that fails
 * with one of them can only succeed under the next generation.
 */
const rebalanceErrorTypes = new Set([
  "REBALANCE_IN_PROGRESS",
  "ILLEGAL_GENERATION",
  "UNKNOWN_MEMBER_ID",
  "NOT_COORDINATOR_FOR_GROUP",
  "FENCED_INSTANCE_ID"
])

/** Returns true when `error` (or an error it wraps) reports that the consumer group is being rebalanced. */
export const isRebalanceError = (error: unknown): boolean => {
  const type = kafkaErrorType(error)
  return type !== undefined && rebalanceErrorTypes.has(type)
}

/**
 * A failed call to the Kafka cluster. `retriable` follows kafkajs's own classification of the
 * original cause (a broker restarting or a leader moving is retriable, an authorization failure
 * is not), looking through the wrappers kafkajs adds when its own retries run out.
 */
export class KafkaError extends Data.TaggedError("KafkaError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  get retriable(): boolean {
    const chain = causeChain(this.cause)
    const original = chain[chain.length - 1]
    return original !== undefined && original.retriable === true
  }

  /** The protocol error type of the cause, such as `REBALANCE_IN_PROGRESS`, when it has one. */
  get errorType(): string | undefined {
    return kafkaErrorType(this.cause)
  }

  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Kafka ${this.operation} failed: ${reason}`
  }
}
