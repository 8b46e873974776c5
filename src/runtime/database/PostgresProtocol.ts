/**
 * The parts of the PostgreSQL frontend/backend protocol (version 3.0) that
 * this project reads and writes itself. It frames the byte stream a client
 * sends into messages and scans backend responses for the transaction
 * status. It also encodes the few messages that PGlite does not produce.
 *
 * @module
 */
import { Buffer } from "node:buffer"

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

export const TERMINATE = 0x58 // 'X'
export const READY_FOR_QUERY = 0x5a // 'Z'
export const ERROR_RESPONSE = 0x45 // 'E'
export const TRANSACTION_IDLE = 0x49 // 'I'

/** Extended-query messages, which get no ReadyForQuery until the next Sync. */
export const EXTENDED_QUERY_TYPES: ReadonlySet<number> = new Set([
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
export interface BackendScan {
  /** Transaction status byte of the last ReadyForQuery ('I', 'T' or 'E'), if the response has one. */
  readonly readyStatus: number | undefined
  /** Whether an ErrorResponse follows the last ReadyForQuery, or appears anywhere when there is none. */
  readonly errorAfterReady: boolean
}

/** Walks the backend messages in `bytes`, stopping silently at a malformed length. */
export const scanBackendMessages = (bytes: Uint8Array): BackendScan => {
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

export const encodeQuery = (sql: string): Uint8Array => {
  const text = Buffer.from(`${sql}\0`, "utf8")
  const message = Buffer.alloc(5 + text.length)
  message[0] = 0x51 // 'Q'
  message.writeInt32BE(4 + text.length, 1)
  text.copy(message, 5)
  return message
}

export const SYNC_MESSAGE = Uint8Array.of(0x53, 0, 0, 0, 4) // 'S'
export const ROLLBACK_MESSAGE = encodeQuery("ROLLBACK")
export const SSL_NOT_SUPPORTED = Uint8Array.of(0x4e) // 'N'

/**
 * Returns the parameters of a StartupMessage (`user`, `database`,
 * `application_name` and so on). `bytes` is the whole packet, length word
 * included. A packet whose parameter list is cut off yields the complete pairs.
 */
export const parseStartupParameters = (bytes: Uint8Array): Record<string, string> => {
  const fields = Buffer.from(bytes.buffer, bytes.byteOffset + 8, bytes.length - 8).toString("utf8").split("\0")
  const parameters: Record<string, string> = {}
  for (let index = 0; index + 1 < fields.length && fields[index] !== ""; index += 2) {
    parameters[fields[index]!] = fields[index + 1]!
  }
  return parameters
}

/** Encodes a backend message: the type byte, an int32 length that counts itself, then `body`. */
const encodeBackendMessage = (type: string, body: Uint8Array): Buffer => {
  const message = Buffer.alloc(5 + body.length)
  message.write(type, 0, "latin1")
  message.writeInt32BE(4 + body.length, 1)
  message.set(body, 5)
  return message
}

const int32Bytes = (...values: ReadonlyArray<number>): Buffer => {
  const bytes = Buffer.alloc(4 * values.length)
  values.forEach((value, index) => bytes.writeInt32BE(value, 4 * index))
  return bytes
}

/** AuthenticationOk: the server accepts the client without a password. */
export const encodeAuthenticationOk = (): Buffer => encodeBackendMessage("R", int32Bytes(0))

/** ParameterStatus: reports the current value of a run-time parameter such as `server_version`. */
export const encodeParameterStatus = (name: string, value: string): Buffer =>
  encodeBackendMessage("S", Buffer.from(`${name}\0${value}\0`, "utf8"))

/** BackendKeyData: the process id and secret key a client sends back in a CancelRequest. */
export const encodeBackendKeyData = (processId: number, secretKey: number): Buffer =>
  encodeBackendMessage("K", int32Bytes(processId, secretKey))

/** ReadyForQuery with a transaction status byte: 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
export const encodeReadyForQuery = (status: "I" | "T" | "E"): Buffer => encodeBackendMessage("Z", Buffer.from(status, "latin1"))

/** Fields of an ErrorResponse that this project sends. */
export interface ErrorFields {
  /** `ERROR`, or `FATAL` when the server closes the connection after the message. */
  readonly severity: "ERROR" | "FATAL"
  /** Five-character SQLSTATE, for example `08P01` (protocol_violation). */
  readonly code: string
  readonly message: string
}

/** ErrorResponse with severity (localized and not), SQLSTATE and message fields. */
export const encodeErrorResponse = (fields: ErrorFields): Buffer =>
  encodeBackendMessage(
    "E",
    Buffer.from(`S${fields.severity}\0V${fields.severity}\0C${fields.code}\0M${fields.message}\0\0`, "utf8")
  )
