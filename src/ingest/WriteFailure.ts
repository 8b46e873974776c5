/**
 * Class of a failed write, which decides what happens to the records in it.
 *
 * - `transient`: the database or the network is unavailable for a while (connection refused or
 *   reset, SQLSTATE classes 08 and 53, 57P…, 40001, 40P01, 55P03, 57014, a retriable Kafka
 *   error). Retried until it succeeds.
 * - `data`: the database rejected the values themselves (SQLSTATE classes 22, 23 and 54: invalid
 *   or out-of-range data, a constraint, a value too large). Retrying cannot help; the records that
 *   cause it are isolated and dead-lettered.
 * - `persistent`: any other failure, such as a missing table (42P01), missing privileges (42501)
 *   or an error without a code. It is not the data's fault and would hit every record alike, so
 *   dead-lettering would move good records out of the way. Retried like a transient failure, and
 *   logged as an error, until an operator fixes the cause.
 */
export type WriteFailureClass = "transient" | "data" | "persistent"

/** SQLSTATE classes (the first two characters) of failures that go away by themselves. */
const transientSqlStateClasses = new Set(["08", "53"])

/** Single SQLSTATE codes of failures that go away by themselves. */
const transientSqlStates = new Set([
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03", // lock_not_available
  "57014" // query_canceled, which includes a statement timeout
])

/** SQLSTATE classes of failures caused by the values written. */
const dataSqlStateClasses = new Set([
  "22", // data_exception
  "23", // integrity_constraint_violation
  "54" // program_limit_exceeded, such as a row too large for an index
])

/** Node.js socket error codes of a database or broker that cannot be reached right now. */
const transientSystemCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN"
])

/** Messages of the `pg` driver for a connection lost or never made, which carry no code. */
const transientDriverMessages = [
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Client has encountered a connection error",
  "Connection ended"
]

/**
 * A SQLSTATE: five digits or capitals whose class starts with a digit, F, H, P or X (PostgreSQL
 * 17, appendix A). The class keeps Node.js codes such as `EPIPE`, also five capitals, out.
 */
const sqlStatePattern = /^[0-9FHPX][0-9A-Z]{4}$/

interface ErrorLink {
  readonly code?: unknown
  readonly message?: unknown
  readonly retriable?: unknown
  readonly _tag?: unknown
  readonly cause?: unknown
}

/** `error` and the errors it wraps through `cause`, outermost first. */
const causeChain = (error: unknown): Array<ErrorLink> => {
  const chain: Array<ErrorLink> = []
  let current: unknown = error
  while (typeof current === "object" && current !== null && chain.length < 10 && !chain.includes(current as ErrorLink)) {
    chain.push(current as ErrorLink)
    current = (current as ErrorLink).cause
  }
  return chain
}

/** Returns the SQLSTATE of a failed statement (`23514`) from the driver error inside a `SqlError`, if there is one. */
export const sqlStateOf = (error: unknown): string | undefined => {
  for (const link of causeChain(error)) {
    if (typeof link.code === "string" && sqlStatePattern.test(link.code)) return link.code
  }
  return undefined
}

/** Classifies the failure of a database write or a Kafka call (see `WriteFailureClass`). */
export const classifyWriteFailure = (error: unknown): WriteFailureClass => {
  const chain = causeChain(error)
  const sqlState = sqlStateOf(error)
  if (sqlState !== undefined) {
    if (dataSqlStateClasses.has(sqlState.slice(0, 2))) return "data"
    if (transientSqlStateClasses.has(sqlState.slice(0, 2))) return "transient"
    if (transientSqlStates.has(sqlState) || sqlState.startsWith("57P")) return "transient"
    return "persistent"
  }
  for (const link of chain) {
    if (typeof link.code === "string" && transientSystemCodes.has(link.code)) return "transient"
    if (typeof link.message === "string" && transientDriverMessages.some((text) => (link.message as string).includes(text))) {
      return "transient"
    }
  }
  // A KafkaError: kafkajs marks its retriable errors on the innermost cause.
  if (chain[0]?._tag === "KafkaError") {
    const original = chain[chain.length - 1]
    return original?.retriable === true ? "transient" : "persistent"
  }
  return "persistent"
}

/**
 * Formats an error with the messages of the errors it wraps, so that a `SqlError` shows the
 * database's own message and SQLSTATE (`Failed to execute statement: new row … (SQLSTATE 23514)`).
 */
export const describeFailure = (error: unknown): string => {
  const chain = causeChain(error)
  const messages: Array<string> = []
  for (const link of chain) {
    const message = link.message
    if (typeof message !== "string" || message === "") continue
    // A KafkaError's own message already contains its cause's.
    if (!messages.some((earlier) => earlier.includes(message))) messages.push(message)
  }
  const text = messages.length > 0 ? messages.join(": ") : String(error)
  const sqlState = sqlStateOf(error)
  return sqlState === undefined ? text : `${text} (SQLSTATE ${sqlState})`
}
