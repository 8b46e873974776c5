import { Buffer } from "node:buffer"
import { once } from "node:events"
import type { Duplex } from "node:stream"
import { layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Pg from "pg"
import { describe, expect, it } from "vitest"
import { EmbeddedDatabase } from "../../../src/runtime/database/EmbeddedDatabase.ts"
import type { PgliteProtocolTarget } from "../../../src/runtime/database/PgliteSession.ts"
import { makePgliteStreamFactory } from "../../../src/runtime/database/PgliteStream.ts"
import {
  CANCEL_REQUEST_CODE,
  FrontendMessageFramer,
  FrontendProtocolError,
  PROTOCOL_VERSION_3_0,
  SSL_REQUEST_CODE
} from "../../../src/runtime/database/PostgresProtocol.ts"

// Frontend messages, built by hand so that the tests do not depend on a client library.

const startupMessage = (params: Record<string, string> = { user: "postgres", database: "postgres" }): Buffer => {
  const body = Buffer.from(Object.entries(params).map(([key, value]) => `${key}\0${value}\0`).join("") + "\0")
  const message = Buffer.alloc(8 + body.length)
  message.writeInt32BE(message.length, 0)
  message.writeInt32BE(PROTOCOL_VERSION_3_0, 4)
  body.copy(message, 8)
  return message
}

const requestPacket = (code: number, extra: ReadonlyArray<number> = []): Buffer => {
  const message = Buffer.alloc(8 + 4 * extra.length)
  message.writeInt32BE(message.length, 0)
  message.writeInt32BE(code, 4)
  extra.forEach((value, index) => message.writeInt32BE(value, 8 + 4 * index))
  return message
}

const typedMessage = (type: string, body: Buffer = Buffer.alloc(0)): Buffer => {
  const message = Buffer.alloc(5 + body.length)
  message.write(type, 0, "latin1")
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return message
}

const queryMessage = (sql: string): Buffer => typedMessage("Q", Buffer.from(`${sql}\0`))
const passwordMessage = (password: string): Buffer => typedMessage("p", Buffer.from(`${password}\0`))
const parseMessage = (sql: string): Buffer => typedMessage("P", Buffer.from(`\0${sql}\0\0\0`))
const terminateMessage = (): Buffer => typedMessage("X")

// Backend messages for the fake PGlite.

const readyForQuery = (status: string): Buffer => typedMessage("Z", Buffer.from(status, "latin1"))
const commandComplete = (tag: string): Buffer => typedMessage("C", Buffer.from(`${tag}\0`))
const errorResponse = (text: string): Buffer => typedMessage("E", Buffer.from(`SERROR\0C42000\0M${text}\0\0`))

/** The first type byte of each message a fake received, or "startup" for a startup packet. */
const describeReceived = (messages: ReadonlyArray<Uint8Array>): Array<string> =>
  messages.map((message) =>
    message[0] === 0 ? "startup" : message[0] === 0x51
      ? `Q:${Buffer.from(message.subarray(5, message.length - 1)).toString()}`
      : String.fromCharCode(message[0]!)
  )

/**
 * A stand-in for PGlite that replies like a backend session and records the
 * messages it receives. The output buffer is reused between calls, as PGlite does.
 */
class FakePglite implements PgliteProtocolTarget {
  closed = false
  status = "I"
  failure: Error | undefined
  readonly received: Array<Uint8Array> = []
  #output = Buffer.alloc(1024)

  readonly runExclusive = <T>(fn: () => Promise<T>): Promise<T> => fn()

  readonly execProtocolRaw = async (message: Uint8Array): Promise<Uint8Array> => {
    this.received.push(Uint8Array.prototype.slice.call(message))
    if (this.failure !== undefined) {
      throw this.failure
    }
    return this.#reply(this.#respond(message))
  }

  #respond(message: Uint8Array): Buffer {
    if (message[0] === 0) {
      return typedMessage("R", Buffer.from([0, 0, 0, 0]))
    }
    const type = String.fromCharCode(message[0]!)
    switch (type) {
      case "p":
        return Buffer.concat([typedMessage("R", Buffer.from([0, 0, 0, 0])), readyForQuery(this.status)])
      case "Q": {
        const sql = Buffer.from(message.subarray(5, message.length - 1)).toString()
        if (/^begin/i.test(sql)) {
          this.status = "T"
        } else if (/^(rollback|commit)/i.test(sql)) {
          this.status = "I"
        } else if (/^fail/i.test(sql)) {
          if (this.status === "T") {
            this.status = "E"
          }
          return Buffer.concat([errorResponse("failed on purpose"), readyForQuery(this.status)])
        }
        return Buffer.concat([commandComplete("OK"), readyForQuery(this.status)])
      }
      case "P":
        return message.includes(0x21) // '!' marks a statement that fails to parse
          ? errorResponse("syntax error")
          : typedMessage("1")
      case "S":
        if (this.status === "E") {
          this.status = "I"
        }
        return readyForQuery(this.status)
      default:
        return Buffer.alloc(0)
    }
  }

  #reply(bytes: Buffer): Uint8Array {
    this.#output.fill(0xff)
    bytes.copy(this.#output)
    return this.#output.subarray(0, bytes.length)
  }
}

/** Collects what a stream pushes, and whether it closed. */
const observe = (stream: Duplex) => {
  const chunks: Array<Buffer> = []
  const errors: Array<Error> = []
  let closed = false
  stream.on("data", (chunk: Buffer) => chunks.push(chunk))
  stream.on("error", (error) => errors.push(error))
  stream.on("close", () => {
    closed = true
  })
  return {
    get received() {
      return Buffer.concat(chunks)
    },
    errors,
    get closed() {
      return closed
    }
  }
}

const write = (stream: Duplex, bytes: Uint8Array): Promise<void> =>
  new Promise((resolve, reject) => stream.write(bytes, (error) => (error ? reject(error) : resolve())))

const connect = async (stream: Duplex & { connect: (port: number, host: string) => unknown }) => {
  const connected = once(stream, "connect")
  stream.connect(5432, "localhost")
  await connected
}

/** Lets queued stream work (which waits for a setImmediate turn per batch) run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

type SocketLike = Duplex & { connect: (port: number, host: string) => unknown }

const openSession = async (factory: () => Duplex) => {
  const stream = factory() as SocketLike
  const observed = observe(stream)
  await connect(stream)
  await write(stream, startupMessage())
  await write(stream, passwordMessage("postgres"))
  return { stream, observed }
}

describe("FrontendMessageFramer", () => {
  it("frames a startup message", () => {
    const framer = new FrontendMessageFramer()
    const startup = startupMessage()

    const messages = framer.push(startup)

    expect(messages).toHaveLength(1)
    expect(messages[0]).toMatchObject({ _tag: "Startup", code: PROTOCOL_VERSION_3_0 })
    expect(Buffer.from(messages[0]!.bytes).equals(startup)).toBe(true)
    expect(framer.inStartupPhase).toBe(false)
  })

  it("frames a message split across chunks", () => {
    const framer = new FrontendMessageFramer()
    framer.push(startupMessage())
    const query = queryMessage("select 1")

    for (let i = 0; i < query.length - 1; i++) {
      expect(framer.push(query.subarray(i, i + 1))).toEqual([])
    }
    const messages = framer.push(query.subarray(query.length - 1))

    expect(messages).toHaveLength(1)
    expect(messages[0]).toMatchObject({ _tag: "Regular", type: 0x51 })
    expect(Buffer.from(messages[0]!.bytes).equals(query)).toBe(true)
    expect(framer.bufferedBytes).toBe(0)
  })

  it("frames two messages in one chunk", () => {
    const framer = new FrontendMessageFramer()
    framer.push(startupMessage())
    const parse = parseMessage("select 1")
    const sync = typedMessage("S")

    const messages = framer.push(Buffer.concat([parse, sync]))

    expect(messages.map((message) => message._tag === "Regular" && String.fromCharCode(message.type))).toEqual([
      "P",
      "S"
    ])
    expect(Buffer.from(messages[0]!.bytes).equals(parse)).toBe(true)
    expect(Buffer.from(messages[1]!.bytes).equals(sync)).toBe(true)
  })

  it("keeps a partial message across chunks", () => {
    const framer = new FrontendMessageFramer()
    const startup = startupMessage()
    const query = queryMessage("select 2")
    const chunk = Buffer.concat([startup, query.subarray(0, 3)])

    expect(framer.push(chunk)).toHaveLength(1)
    chunk.fill(0) // the writer may reuse its buffer once the write completed
    const messages = framer.push(query.subarray(3))

    expect(messages).toHaveLength(1)
    expect(Buffer.from(messages[0]!.bytes).equals(query)).toBe(true)
  })

  it("stays in the startup phase after an SSLRequest", () => {
    const framer = new FrontendMessageFramer()

    const messages = framer.push(Buffer.concat([requestPacket(SSL_REQUEST_CODE), startupMessage(), queryMessage("x")]))

    expect(messages.map((message) => message._tag)).toEqual(["Startup", "Startup", "Regular"])
    expect(messages[0]).toMatchObject({ code: SSL_REQUEST_CODE })
    expect(messages[1]).toMatchObject({ code: PROTOCOL_VERSION_3_0 })
  })

  it("frames a message larger than one chunk", () => {
    const framer = new FrontendMessageFramer()
    framer.push(startupMessage())
    const query = queryMessage(`select '${"x".repeat(3_000_000)}'`)
    const chunkSize = 65_536
    const messages = []

    for (let offset = 0; offset < query.length; offset += chunkSize) {
      messages.push(...framer.push(query.subarray(offset, offset + chunkSize)))
    }

    expect(messages).toHaveLength(1)
    expect(Buffer.from(messages[0]!.bytes).equals(query)).toBe(true)
  })

  it("rejects an invalid message length", () => {
    const framer = new FrontendMessageFramer()
    framer.push(startupMessage())
    const invalid = Buffer.from([0x51, 0, 0, 0, 2])

    expect(() => framer.push(invalid)).toThrow(FrontendProtocolError)
  })

  it("rejects an oversized startup packet", () => {
    const framer = new FrontendMessageFramer()
    const invalid = Buffer.alloc(8)
    invalid.writeInt32BE(1_000_000, 0)

    expect(() => framer.push(invalid)).toThrow(/startup packet length 1000000/)
  })
})

describe("PgliteStream with a fake PGlite", () => {
  it("forwards messages in order and copies each reply", async () => {
    const fake = new FakePglite()
    const { stream, observed } = await openSession(makePgliteStreamFactory(fake))

    await write(stream, Buffer.concat([queryMessage("select 1"), queryMessage("select 2")]))

    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:select 1", "Q:select 2"])
    // The fake overwrites its output buffer on every call, so a reply pushed without copying would be corrupted.
    const expected = Buffer.concat([
      typedMessage("R", Buffer.from([0, 0, 0, 0])),
      typedMessage("R", Buffer.from([0, 0, 0, 0])),
      readyForQuery("I"),
      commandComplete("OK"),
      readyForQuery("I"),
      commandComplete("OK"),
      readyForQuery("I")
    ])
    expect(observed.received.equals(expected)).toBe(true)
    stream.destroy()
  })

  it("replies N to an SSLRequest", async () => {
    const fake = new FakePglite()
    const stream = makePgliteStreamFactory(fake)() as SocketLike
    const observed = observe(stream)
    await connect(stream)

    await write(stream, requestPacket(SSL_REQUEST_CODE))

    expect(observed.received.toString("latin1")).toBe("N")
    expect(fake.received).toEqual([])
    await write(stream, startupMessage())
    expect(describeReceived(fake.received)).toEqual(["startup"])
    stream.destroy()
  })

  it("consumes Terminate and closes", async () => {
    const fake = new FakePglite()
    const { stream, observed } = await openSession(makePgliteStreamFactory(fake))

    stream.write(terminateMessage(), () => stream.end())
    await once(stream, "close")

    expect(describeReceived(fake.received)).toEqual(["startup", "p"])
    expect(observed.errors).toEqual([])
  })

  it("closes a CancelRequest stream without touching the session", async () => {
    const fake = new FakePglite()
    const factory = makePgliteStreamFactory(fake)
    const { stream: session } = await openSession(factory)
    await write(session, queryMessage("begin"))
    const cancel = factory() as SocketLike
    const observedCancel = observe(cancel)
    await connect(cancel)

    const closed = once(cancel, "close")
    cancel.write(requestPacket(CANCEL_REQUEST_CODE, [0, 0]))
    await closed

    expect(observedCancel.received.length).toBe(0)
    expect(observedCancel.errors).toEqual([])
    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:begin"])
    expect(fake.status).toBe("T")
    await write(session, queryMessage("commit"))
    expect(fake.status).toBe("I")
    session.destroy()
  })

  it("turns an execProtocolRaw failure into a stream error", async () => {
    const fake = new FakePglite()
    const { stream, observed } = await openSession(makePgliteStreamFactory(fake))
    fake.failure = new Error("wasm trap")

    const failed = once(stream, "error")
    stream.write(queryMessage("select 1"))
    const [error] = await failed

    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toBe("wasm trap")
    await settle()
    expect(observed.closed).toBe(true)
  })

  it("fails on an unsupported startup code", async () => {
    const fake = new FakePglite()
    const stream = makePgliteStreamFactory(fake)() as SocketLike
    await connect(stream)

    const failed = once(stream, "error")
    stream.write(requestPacket(1234))
    const [error] = await failed

    expect(error).toBeInstanceOf(FrontendProtocolError)
    expect(fake.received).toEqual([])
  })

  it("rolls back a transaction left open by a closed stream", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    await write(stream, queryMessage("begin"))

    stream.destroy()
    await settle()

    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:begin", "Q:ROLLBACK"])
    expect(fake.status).toBe("I")
  })

  it("rolls back a failed transaction left by a closed stream", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    await write(stream, queryMessage("begin"))
    await write(stream, queryMessage("fail"))
    expect(fake.status).toBe("E")

    stream.destroy()
    await settle()

    expect(describeReceived(fake.received).at(-1)).toBe("Q:ROLLBACK")
    expect(fake.status).toBe("I")
  })

  it("rolls back an unfinished extended query instead of syncing it", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    await write(stream, parseMessage("insert into t values (1)"))

    stream.destroy()
    await settle()

    expect(describeReceived(fake.received)).toEqual(["startup", "p", "P", "Q:ROLLBACK"])
  })

  it("syncs a failed extended query before the next session", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    await write(stream, parseMessage("select !"))

    stream.destroy()
    await settle()

    expect(describeReceived(fake.received)).toEqual(["startup", "p", "P", "S"])
  })

  it("sends nothing on close of an idle session", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    await write(stream, queryMessage("select 1"))

    stream.destroy()
    await settle()

    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:select 1"])
  })

  it("holds a second session until the first closes", async () => {
    const fake = new FakePglite()
    const factory = makePgliteStreamFactory(fake)
    const { stream: first } = await openSession(factory)
    await write(first, queryMessage("begin"))
    const second = factory() as SocketLike
    await connect(second)

    second.write(startupMessage())
    await settle()
    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:begin"])

    first.destroy()
    await settle()
    expect(describeReceived(fake.received)).toEqual(["startup", "p", "Q:begin", "Q:ROLLBACK", "startup"])
    second.destroy()
  })

  it("reports a failed session reset", async () => {
    const fake = new FakePglite()
    const resetErrors: Array<unknown> = []
    const factory = makePgliteStreamFactory(fake, { onSessionResetError: (cause) => resetErrors.push(cause) })
    const { stream } = await openSession(factory)
    await write(stream, queryMessage("begin"))
    fake.failure = new Error("instance broken")

    stream.destroy()
    await settle()

    expect(resetErrors).toHaveLength(1)
    expect((resetErrors[0] as Error).message).toBe("instance broken")
  })

  it("rejects messages once the instance is closed", async () => {
    const fake = new FakePglite()
    const { stream } = await openSession(makePgliteStreamFactory(fake))
    fake.closed = true

    const failed = once(stream, "error")
    stream.write(queryMessage("select 1"))
    const [error] = await failed

    expect((error as Error).message).toBe("The embedded database is closed")
    expect(describeReceived(fake.received)).toEqual(["startup", "p"])
  })
})

const pgClientConfig = (stream: () => Duplex): Pg.ClientConfig => ({
  stream,
  user: "postgres",
  password: "postgres",
  database: "postgres"
})

layer(EmbeddedDatabase.layer("memory://"))("PgliteStream with PGlite and pg", (it) => {
  it.effect("runs queries through pg.Client", () =>
    Effect.gen(function*() {
      const { makeStream } = yield* EmbeddedDatabase
      const client = new Pg.Client(pgClientConfig(makeStream))
      yield* Effect.promise(() => client.connect())

      const result = yield* Effect.promise(() => client.query("select $1::int + 1 as sum", [41]))
      yield* Effect.promise(() => client.end())

      expect(result.rows).toEqual([{ sum: 42 }])
    }))

  it.effect("rolls back when a connection drops mid-transaction", () =>
    Effect.gen(function*() {
      const { makeStream } = yield* EmbeddedDatabase
      const setup = new Pg.Client(pgClientConfig(makeStream))
      yield* Effect.promise(() => setup.connect())
      yield* Effect.promise(() => setup.query("create table dropped_tx (id int)"))
      yield* Effect.promise(() => setup.end())
      const dropped = new Pg.Client(pgClientConfig(makeStream))
      dropped.on("error", () => undefined)
      yield* Effect.promise(() => dropped.connect())
      yield* Effect.promise(() => dropped.query("begin"))
      yield* Effect.promise(() => dropped.query("insert into dropped_tx values (1)"))

      ;(dropped as unknown as { connection: { stream: Duplex } }).connection.stream.destroy()
      const next = new Pg.Client(pgClientConfig(makeStream))
      yield* Effect.promise(() => next.connect())
      const count = yield* Effect.promise(() => next.query("select count(*)::int as n from dropped_tx"))
      const status = yield* Effect.promise(() => next.query("select now() = statement_timestamp() as idle"))
      yield* Effect.promise(() => next.end())

      expect(count.rows).toEqual([{ n: 0 }])
      // now() is the transaction start, so it equals statement_timestamp() only outside an open transaction.
      expect(status.rows).toEqual([{ idle: true }])
    }))

  it.effect("keeps the session through a CancelRequest", () =>
    Effect.gen(function*() {
      const { makeStream } = yield* EmbeddedDatabase
      const client = new Pg.Client(pgClientConfig(makeStream))
      yield* Effect.promise(() => client.connect())
      yield* Effect.promise(() => client.query("create table cancelled (id int)"))
      yield* Effect.promise(() => client.query("begin"))
      yield* Effect.promise(() => client.query("insert into cancelled values (1)"))

      const cancel = makeStream() as SocketLike
      yield* Effect.promise(async () => {
        await connect(cancel)
        const closed = once(cancel, "close")
        cancel.write(requestPacket(CANCEL_REQUEST_CODE, [0, 0]))
        await closed
      })
      yield* Effect.promise(() => client.query("commit"))
      const count = yield* Effect.promise(() => client.query("select count(*)::int as n from cancelled"))
      yield* Effect.promise(() => client.end())

      expect(count.rows).toEqual([{ n: 1 }])
    }))

  it.effect("rejects ssl with the server's N", () =>
    Effect.gen(function*() {
      const { makeStream } = yield* EmbeddedDatabase
      const client = new Pg.Client({ ...pgClientConfig(makeStream), ssl: true })
      client.on("error", () => undefined)

      const error = yield* Effect.promise(() => client.connect().then(() => undefined, (cause: unknown) => cause))
      const plain = new Pg.Client(pgClientConfig(makeStream))
      yield* Effect.promise(() => plain.connect())
      const result = yield* Effect.promise(() => plain.query("select 1 as one"))
      yield* Effect.promise(() => plain.end())

      expect(error).toBeInstanceOf(Error)
      expect((error as Error).message).toBe("The server does not support SSL connections")
      expect(result.rows).toEqual([{ one: 1 }])
    }))
})
