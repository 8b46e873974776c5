/**
 * A `node:stream` Duplex that lets the `pg` driver (and so `@effect/sql-pg`'s
 * `PgClient`) talk to an in-process PGlite instance as if it were a TCP socket
 * to a PostgreSQL server.
 *
 * Bytes written by `pg` are framed into frontend protocol messages, and each
 * complete message is executed with `execProtocolRaw`. The bytes PGlite returns
 * are pushed back to `pg` unchanged. PGlite is a single backend session, so
 * all streams created by one factory share a lease. Only one stream at a time
 * owns the session, from its startup message until it closes. Before the next
 * stream gets the session, an open transaction is rolled back.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { Duplex } from "node:stream"
import { setImmediate } from "node:timers"
import {
  executeMessage,
  type PgliteProtocolTarget,
  SessionLease,
  TransactionTracker,
  yieldToEventLoop
} from "./PgliteSession.ts"
import {
  CANCEL_REQUEST_CODE,
  type FrontendMessage,
  FrontendMessageFramer,
  FrontendProtocolError,
  GSSENC_REQUEST_CODE,
  PROTOCOL_VERSION_3_0,
  SSL_NOT_SUPPORTED,
  SSL_REQUEST_CODE,
  TERMINATE
} from "./PostgresProtocol.ts"

/** Options of {@link makePgliteStreamFactory}. */
export interface PgliteStreamOptions {
  /**
   * Called when rolling back the session after a stream closed mid-transaction
   * fails. The next stream then starts in whatever state the session is in.
   */
  readonly onSessionResetError?: ((cause: unknown) => void) | undefined
}

/**
 * A Duplex that carries one `pg` connection to a PGlite instance. It supports
 * the calls `pg` makes on a socket (`connect`, `setNoDelay`, `setKeepAlive`,
 * `ref`, `unref`, `end`, `destroy`) and emits 'connect', 'data', 'error' and
 * 'close' the way a socket does.
 *
 * Create it through {@link makePgliteStreamFactory}, so that all streams on one
 * instance share the session lease.
 *
 * Behavior by first packet:
 * - StartupMessage: the stream waits for the session lease, then forwards every
 *   message to `execProtocolRaw` in order, one at a time.
 * - SSLRequest or GSSENCRequest: the stream replies 'N' (not supported) and
 *   waits for the StartupMessage.
 * - CancelRequest: consumed and the stream ends. PGlite cannot cancel a running
 *   statement, and the session is not touched.
 *
 * Terminate ('X') ends the stream and is not passed to PGlite, because the
 * instance outlives its connections: `PGlite.close()` is what sends Terminate
 * before shutting the backend down. A failed `execProtocolRaw` destroys the
 * stream with that error.
 */
export class PgliteStream extends Duplex {
  readonly #target: PgliteProtocolTarget
  readonly #lease: SessionLease
  readonly #options: PgliteStreamOptions
  readonly #framer = new FrontendMessageFramer()
  /** Serializes this stream's work on the instance: message batches, then the final session reset. */
  #work: Promise<void> = Promise.resolve()
  /** Set once the stream takes part in the session, i.e. after its StartupMessage. */
  #sessionRequested = false
  #releaseLease: (() => void) | undefined
  /** Set by Terminate, CancelRequest, end() or destroy(): no further message reaches the instance. */
  #finished = false
  readonly #transaction = new TransactionTracker()

  /** @internal Use {@link makePgliteStreamFactory}. */
  constructor(target: PgliteProtocolTarget, lease: SessionLease, options: PgliteStreamOptions) {
    super({ allowHalfOpen: false })
    this.#target = target
    this.#lease = lease
    this.#options = options
  }

  /** Emits 'connect' asynchronously, because `pg` attaches its listener after calling `connect()`. */
  connect(_port?: number, _host?: string): this {
    queueMicrotask(() => {
      if (!this.destroyed) {
        this.emit("connect")
      }
    })
    return this
  }

  /** No-op, for socket compatibility. */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  /** No-op, for socket compatibility. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }

  /** No-op, for socket compatibility. */
  ref(): this {
    return this
  }

  /** No-op, for socket compatibility. */
  unref(): this {
    return this
  }

  override _read(): void {
    // Data is pushed as soon as PGlite returns it.
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let messages: Array<FrontendMessage>
    try {
      messages = this.#framer.push(chunk)
    } catch (error) {
      callback(toError(error))
      return
    }
    this.#enqueue(() => this.#dispatch(messages)).then(() => callback(), (error) => callback(toError(error)))
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#finish()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#finish()
    callback(error)
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#work.then(task)
    this.#work = run.catch(() => undefined)
    return run
  }

  async #dispatch(messages: ReadonlyArray<FrontendMessage>): Promise<void> {
    if (messages.length === 0) {
      return
    }
    await yieldToEventLoop()
    for (const message of messages) {
      if (this.#finished) {
        return
      }
      if (message._tag === "Startup") {
        await this.#onStartupPacket(message.code, message.bytes)
      } else {
        await this.#onMessage(message.type, message.bytes)
      }
    }
  }

  async #onStartupPacket(code: number, bytes: Uint8Array): Promise<void> {
    switch (code) {
      case SSL_REQUEST_CODE:
      case GSSENC_REQUEST_CODE: {
        this.#pushOutput(SSL_NOT_SUPPORTED)
        return
      }
      case CANCEL_REQUEST_CODE: {
        // A server closes a cancel connection right away. Destroying emits 'close' even when the
        // client never reads the end of the stream; the next tick lets this write's callback run first.
        this.#finish()
        setImmediate(() => this.destroy())
        return
      }
      case PROTOCOL_VERSION_3_0: {
        this.#sessionRequested = true
        this.#releaseLease = await this.#lease.acquire()
        if (this.#finished) {
          return
        }
        this.#pushOutput(await this.#execute(bytes))
        return
      }
      default: {
        throw new FrontendProtocolError(
          `Unsupported startup packet code ${code}: expected protocol 3.0 (${PROTOCOL_VERSION_3_0}), SSLRequest, GSSENCRequest or CancelRequest`
        )
      }
    }
  }

  async #onMessage(type: number, bytes: Uint8Array): Promise<void> {
    if (type === TERMINATE) {
      this.#finish()
      return
    }
    const output = await this.#execute(bytes)
    this.#transaction.observe(type, output)
    this.#pushOutput(output)
  }

  #execute(message: Uint8Array): Promise<Uint8Array> {
    return executeMessage(this.#target, message)
  }

  #pushOutput(bytes: Uint8Array): void {
    if (!this.destroyed && !this.#finished && bytes.length > 0) {
      this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))
    }
  }

  /** Ends the readable side and hands the session back, rolled back to idle. Safe to call more than once. */
  #finish(): void {
    if (this.#finished) {
      return
    }
    this.#finished = true
    if (!this.destroyed) {
      this.push(null)
    }
    if (this.#sessionRequested) {
      void this.#enqueue(() => this.#resetSession()).finally(() => this.#releaseLease?.())
    }
  }

  /**
   * Leaves the session idle for the next stream, as a server does when a
   * connection drops: an open or failed transaction is rolled back. Settings
   * and prepared statements of the session are kept.
   */
  async #resetSession(): Promise<void> {
    if (this.#releaseLease === undefined) {
      return
    }
    try {
      await this.#transaction.rollBack((message) => this.#execute(message))
    } catch (cause) {
      this.#options.onSessionResetError?.(cause)
    }
  }
}

const toError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)))

/**
 * Creates the `stream` factory for `PgClientConfig.stream` that connects `pg`
 * to `instance`. All streams from one factory share the instance's single
 * session, so configure the client with `maxConnections: 1`: a second
 * concurrent connection would wait for the first one to close.
 */
export const makePgliteStreamFactory = (
  instance: PgliteProtocolTarget,
  options: PgliteStreamOptions = {}
): () => Duplex => {
  const lease = new SessionLease()
  return () => new PgliteStream(instance, lease, options)
}
