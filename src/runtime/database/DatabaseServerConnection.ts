/**
 * One client connection of the embedded database server: a TCP socket that
 * speaks the PostgreSQL frontend/backend protocol, in front of the single
 * PGlite session that every connection of the server shares.
 *
 * The connection replies to the startup packet itself, because PGlite's session
 * was started when the instance opened. Every later frontend message goes to
 * `execProtocolRaw` and the backend bytes go back to this client unchanged.
 *
 * A connection takes the session lease with its first message after startup
 * and keeps it until PGlite returns ReadyForQuery with status 'I' (idle, no
 * transaction open). An extended-query sequence (Parse, Bind, Execute, Sync)
 * therefore runs as one piece, and so does a transaction. Other connections
 * wait for the lease in arrival order, so their statements never interleave
 * with an open transaction.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import type * as Net from "node:net"
import {
  executeMessage,
  type PgliteProtocolTarget,
  type SessionLease,
  TransactionTracker,
  yieldToEventLoop
} from "./PgliteSession.ts"
import {
  CANCEL_REQUEST_CODE,
  encodeAuthenticationOk,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
  type ErrorFields,
  type FrontendMessage,
  FrontendMessageFramer,
  GSSENC_REQUEST_CODE,
  parseStartupParameters,
  PROTOCOL_VERSION_3_0,
  SSL_NOT_SUPPORTED,
  SSL_REQUEST_CODE,
  TERMINATE,
  TRANSACTION_IDLE
} from "./PostgresProtocol.ts"

/** The PGlite session that all connections of one server share. */
export interface SharedSession {
  readonly target: PgliteProtocolTarget
  readonly lease: SessionLease
  /**
   * ParameterStatus values sent after startup, read from the session when the
   * server started. `application_name` is taken from each client's startup
   * packet instead.
   */
  readonly parameters: ReadonlyArray<readonly [name: string, value: string]>
}

/** Callbacks through which a connection reports to its server. None of them may throw. */
export interface ConnectionEvents {
  /** The client completed startup. */
  readonly onStartup: (parameters: Readonly<Record<string, string>>) => void
  /** The client sent bytes that are not valid protocol; the connection is closed with a FATAL error. */
  readonly onProtocolError: (message: string) => void
  /** `execProtocolRaw` rejected, which leaves the PGlite instance unusable; the connection is closed. */
  readonly onExecuteError: (cause: unknown) => void
  /** Rolling back the transaction of a closed connection failed; the next client may start inside it. */
  readonly onSessionResetError: (cause: unknown) => void
  /** The socket closed. */
  readonly onClose: () => void
}

/** Sent to every client when the server shuts down, as PostgreSQL does on a fast shutdown. */
export const ADMIN_SHUTDOWN: ErrorFields = {
  severity: "FATAL",
  code: "57P01",
  message: "terminating connection due to administrator command"
}

/** The fixed part of the startup reply: authentication accepted, without a password. */
const AUTHENTICATION_OK = encodeAuthenticationOk()

/** Returns the error for a startup packet code that is not protocol 3.0 or a known request. */
const unsupportedStartup = (code: number): ErrorFields => ({
  severity: "FATAL",
  code: "0A000",
  message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: the server supports protocol 3.0`
})

/**
 * A client connection. It reads from the socket one chunk at a time, pausing
 * the socket while the messages of a chunk run, so a client that sends faster
 * than PGlite executes is held back by TCP flow control.
 */
export class DatabaseServerConnection {
  /** The process id sent in BackendKeyData. No PGlite process has it, so `pg_cancel_backend` on it does nothing. */
  readonly processId: number
  readonly #secretKey: number
  readonly #socket: Net.Socket
  readonly #session: SharedSession
  readonly #events: ConnectionEvents
  readonly #framer = new FrontendMessageFramer()
  readonly #transaction = new TransactionTracker()
  /** Serializes this connection's work on the session: message batches, then the final rollback. */
  #work: Promise<void> = Promise.resolve()
  #releaseLease: (() => void) | undefined
  #startedUp = false
  /** Set by Terminate, CancelRequest, a closed socket or shutdown: no further message reaches the session. */
  #finished = false
  /** Set when `execProtocolRaw` rejected: the instance cannot run the rollback either. */
  #sessionBroken = false
  readonly #closed: Promise<void>

  constructor(socket: Net.Socket, session: SharedSession, processId: number, secretKey: number, events: ConnectionEvents) {
    this.processId = processId
    this.#secretKey = secretKey
    this.#socket = socket
    this.#session = session
    this.#events = events
    this.#closed = new Promise((resolve) => socket.once("close", () => resolve()))
    socket.setNoDelay(true)
    socket.on("data", (chunk: Buffer) => this.#onData(chunk))
    socket.on("end", () => this.#finish())
    // 'close' follows every 'error', and the connection cleans up there.
    socket.on("error", () => undefined)
    socket.on("close", () => {
      this.#finish()
      events.onClose()
    })
  }

  /**
   * Ends the connection: an open transaction is rolled back and the session
   * lease released, then `reason` is sent to a client past startup and the
   * socket is closed. Resolves once the socket has closed.
   */
  close(reason: ErrorFields): Promise<void> {
    this.#finish(reason)
    return this.#closed
  }

  /** Closes the socket at once, without a rollback or a message. PGlite aborts an open transaction when it closes. */
  destroy(): void {
    this.#finished = true
    this.#socket.destroy()
  }

  #onData(chunk: Buffer): void {
    let messages: Array<FrontendMessage>
    try {
      messages = this.#framer.push(chunk)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      this.#events.onProtocolError(message)
      this.#finish({ severity: "FATAL", code: "08P01", message })
      return
    }
    if (messages.length === 0) {
      return
    }
    this.#socket.pause()
    void this.#enqueue(() => this.#dispatch(messages)).then(() => {
      if (!this.#finished) {
        this.#socket.resume()
      }
    })
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#work.then(task)
    this.#work = run.catch(() => undefined)
    return this.#work
  }

  async #dispatch(messages: ReadonlyArray<FrontendMessage>): Promise<void> {
    await yieldToEventLoop()
    for (const message of messages) {
      if (this.#finished) {
        return
      }
      if (message._tag === "Startup") {
        this.#onStartupPacket(message.code, message.bytes)
      } else {
        await this.#onMessage(message.type, message.bytes)
      }
    }
  }

  #onStartupPacket(code: number, bytes: Uint8Array): void {
    switch (code) {
      case SSL_REQUEST_CODE:
      case GSSENC_REQUEST_CODE: {
        this.#write(SSL_NOT_SUPPORTED)
        return
      }
      case CANCEL_REQUEST_CODE: {
        // PGlite runs a statement synchronously on this thread, so nothing is running that could be
        // cancelled by the time this packet is read. A server closes a cancel connection right away.
        this.#finish()
        return
      }
      case PROTOCOL_VERSION_3_0: {
        const parameters = parseStartupParameters(bytes)
        const reply = [AUTHENTICATION_OK]
        for (const [name, value] of this.#session.parameters) {
          reply.push(encodeParameterStatus(name, value))
        }
        reply.push(
          encodeParameterStatus("application_name", parameters["application_name"] ?? ""),
          encodeBackendKeyData(this.processId, this.#secretKey),
          encodeReadyForQuery("I")
        )
        this.#startedUp = true
        this.#write(Buffer.concat(reply))
        this.#events.onStartup(parameters)
        return
      }
      default: {
        this.#events.onProtocolError(unsupportedStartup(code).message)
        this.#finish(unsupportedStartup(code))
      }
    }
  }

  async #onMessage(type: number, bytes: Uint8Array): Promise<void> {
    if (type === TERMINATE) {
      this.#finish()
      return
    }
    if (this.#releaseLease === undefined) {
      this.#releaseLease = await this.#session.lease.acquire()
      if (this.#finished) {
        return
      }
    }
    let output: Uint8Array
    try {
      output = await executeMessage(this.#session.target, bytes)
    } catch (cause) {
      this.#sessionBroken = true
      this.#events.onExecuteError(cause)
      this.#finish({ severity: "FATAL", code: "XX000", message: `the embedded database failed: ${messageOf(cause)}` })
      return
    }
    const scan = this.#transaction.observe(type, output)
    this.#write(output)
    if (scan.readyStatus === TRANSACTION_IDLE) {
      this.#releaseLease()
      this.#releaseLease = undefined
    }
  }

  #write(bytes: Uint8Array): void {
    if (this.#socket.writable && bytes.length > 0) {
      this.#socket.write(bytes)
    }
  }

  /** Stops reading, rolls back and releases the session, then closes the socket. Safe to call more than once. */
  #finish(reason?: ErrorFields): void {
    if (this.#finished) {
      return
    }
    this.#finished = true
    void this.#enqueue(async () => {
      await this.#releaseSession()
      if (reason !== undefined && (this.#startedUp || reason !== ADMIN_SHUTDOWN)) {
        this.#write(encodeErrorResponse(reason))
      }
      if (this.#socket.writable) {
        this.#socket.end(() => this.#socket.destroy())
      } else {
        this.#socket.destroy()
      }
    })
  }

  /** Hands the session on idle: an open or failed transaction of this connection is rolled back first. */
  async #releaseSession(): Promise<void> {
    const release = this.#releaseLease
    if (release === undefined) {
      return
    }
    this.#releaseLease = undefined
    try {
      if (!this.#sessionBroken) {
        await this.#transaction.rollBack((message) => executeMessage(this.#session.target, message))
      }
    } catch (cause) {
      this.#events.onSessionResetError(cause)
    } finally {
      release()
    }
  }
}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
