import { Buffer } from "node:buffer"
import { once } from "node:events"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as Pg from "pg"
import { Database, DatabaseInfo } from "../../../src/runtime/database/Database.ts"
import {
  EmbeddedDatabaseServer,
  makeEmbeddedDatabaseServer
} from "../../../src/runtime/database/EmbeddedDatabaseServer.ts"
import {
  CANCEL_REQUEST_CODE,
  encodeQuery,
  PROTOCOL_VERSION_3_0,
  SSL_REQUEST_CODE
} from "../../../src/runtime/database/PostgresProtocol.ts"

// Frontend messages built by hand, for the cases the `pg` driver never sends.

const startupMessage = (): Buffer => {
  const body = Buffer.from("user\0postgres\0database\0postgres\0application_name\0raw-test\0\0")
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

const queryMessage = (sql: string): Buffer => Buffer.from(encodeQuery(sql))

/** Parse of an unnamed statement without parameter types. */
const parseMessage = (sql: string): Buffer => typedMessage("P", Buffer.from(`\0${sql}\0\0\0`))
/** Bind of the unnamed portal to the unnamed statement, without parameters. */
const bindMessage = (): Buffer => typedMessage("B", Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]))
/** Execute of the unnamed portal without a row limit. */
const executeMessage = (): Buffer => typedMessage("E", Buffer.from([0, 0, 0, 0, 0]))

/** A backend message as received: the type letter and the body after the length. */
interface BackendMessage {
  readonly type: string
  readonly body: Buffer
}

/** Opens a protocol client on a raw socket that records every backend message it receives. */
const openRawClient = async (port: number) => {
  const socket = Net.connect({ host: "127.0.0.1", port })
  await once(socket, "connect")
  const messages: Array<BackendMessage> = []
  let pending = Buffer.alloc(0)
  let closed = false
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk])
    // The reply to an SSLRequest is a lone 'N' without a length.
    if (pending.length === 1 && pending[0] === 0x4e && messages.length === 0) {
      messages.push({ type: "N", body: Buffer.alloc(0) })
      pending = Buffer.alloc(0)
      return
    }
    while (pending.length >= 5 && pending.length >= 1 + pending.readInt32BE(1)) {
      const length = pending.readInt32BE(1)
      messages.push({ type: String.fromCharCode(pending[0]!), body: pending.subarray(5, 1 + length) })
      pending = pending.subarray(1 + length)
    }
  })
  socket.on("error", () => undefined)
  socket.on("close", () => {
    closed = true
  })
  const waitFor = async (done: () => boolean, what: string) => {
    for (let attempt = 0; attempt < 500 && !done(); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    if (!done()) throw new Error(`timed out waiting for ${what}; received ${messages.map((m) => m.type).join(" ")}`)
  }
  return {
    socket,
    messages,
    get closed() {
      return closed
    },
    send: (bytes: Buffer) => new Promise<void>((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve()))),
    /** Waits until `count` messages of `type` have arrived. */
    waitForType: (type: string, count = 1) =>
      waitFor(() => messages.filter((message) => message.type === type).length >= count, `${count} × ${type}`),
    waitForClose: () => waitFor(() => closed, "the socket to close")
  }
}

/** Errors' SQLSTATE and message fields. */
const errorFields = (message: BackendMessage) => {
  const fields = new Map<string, string>()
  for (const field of message.body.toString("utf8").split("\0")) {
    if (field.length > 1) fields.set(field[0]!, field.slice(1))
  }
  return { code: fields.get("C"), message: fields.get("M"), severity: fields.get("V") }
}

const withPgClient = async <A>(url: string, use: (client: Pg.Client) => Promise<A>): Promise<A> => {
  const client = new Pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

const countRows = (url: string, table: string) =>
  withPgClient(url, async (client) => Number((await client.query(`select count(*) as n from ${table}`)).rows[0].n))

/** Returns whether `promise` is still pending after `millis`, time enough for the server to reply. */
const isPendingAfter = async (promise: Promise<unknown>, millis: number): Promise<boolean> => {
  let settled = false
  promise.then(() => (settled = true), () => (settled = true))
  await new Promise((resolve) => setTimeout(resolve, millis))
  return !settled
}

const ServerLayer = EmbeddedDatabaseServer.layer({ dataDir: "memory://", host: "127.0.0.1", port: 0 })

layer(ServerLayer, { timeout: 120_000, excludeTestServices: true })("EmbeddedDatabaseServer", (it) => {
  it.effect("holds other clients until a transaction ends", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(() =>
        withPgClient(url, (first) =>
          withPgClient(url, async (second) => {
            await first.query("create table held (id int)")
            await first.query("begin")
            await first.query("insert into held values (1)")
            const counted = second.query("select count(*)::int as n from held")

            expect(await isPendingAfter(counted, 300)).toBe(true)
            await first.query("insert into held values (2)")
            await first.query("commit")
            expect((await counted).rows[0].n).toBe(2)
          })
        )
      )
    }))

  it.effect("serializes interleaved read-modify-write transactions", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      const perClient = 15
      yield* Effect.promise(() =>
        withPgClient(url, (first) =>
          withPgClient(url, async (second) => {
            await first.query("create table counter (value int not null)")
            await first.query("insert into counter values (0)")
            // Each transaction reads the value and writes it back plus one after a pause. Without
            // serialization the two clients would read the same value and lose increments.
            const increment = async (client: Pg.Client) => {
              for (let i = 0; i < perClient; i++) {
                await client.query("begin")
                const value = (await client.query("select value from counter")).rows[0].value as number
                await new Promise((resolve) => setTimeout(resolve, 5))
                await client.query("update counter set value = $1", [value + 1])
                await client.query("commit")
              }
            }
            await Promise.all([increment(first), increment(second)])

            expect((await first.query("select value from counter")).rows[0].value).toBe(2 * perClient)
          })
        )
      )
    }))

  it.effect("rolls back a client that drops mid-transaction", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        await withPgClient(url, (client) => client.query("create table dropped (id int)"))
        const leaving = new Pg.Client({ connectionString: url })
        leaving.on("error", () => undefined)
        await leaving.connect()
        await leaving.query("begin")
        await leaving.query("insert into dropped select * from generate_series(1, 100)")
        const waiting = countRows(url, "dropped")
        ;(leaving as unknown as { connection: { stream: Net.Socket } }).connection.stream.destroy()

        expect(await waiting).toBe(0)
        await withPgClient(url, (client) => client.query("insert into dropped values (1)"))
        expect(await countRows(url, "dropped")).toBe(1)
      })
    }))

  it.effect("rolls back an extended query left without Sync", () =>
    Effect.gen(function*() {
      const { port, url } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        await withPgClient(url, (client) => client.query("create table unsynced (id int)"))
        const raw = await openRawClient(port)
        await raw.send(startupMessage())
        await raw.waitForType("Z")
        await raw.send(Buffer.concat([parseMessage("insert into unsynced values (1)"), bindMessage(), executeMessage()]))
        await raw.send(typedMessage("H")) // Flush: the backend sends what it has, still inside the sequence
        await raw.waitForType("C")
        raw.socket.destroy()

        expect(await countRows(url, "unsynced")).toBe(0)
      })
    }))

  it.effect("inserts 20,000 rows in one message", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      const ids = Array.from({ length: 20_000 }, (_, i) => i + 1)
      const values = ids.map((id) => id * 0.5)
      // pg sends each array as one text parameter, so the Bind message is larger than this.
      expect(`{${ids.join(",")}}`.length + `{${values.join(",")}}`.length).toBeGreaterThan(200_000)
      const result = yield* Effect.promise(() =>
        withPgClient(url, async (client) => {
          await client.query("create table large (id int primary key, value float8)")
          await client.query("insert into large select * from unnest($1::int[], $2::float8[])", [ids, values])
          return (await client.query("select count(*)::int as n, sum(id)::int8 as ids, sum(value) as total from large")).rows[0]
        })
      )

      expect(result.n).toBe(20_000)
      expect(result.ids).toBe(String((20_000 * 20_001) / 2))
      expect(result.total).toBe((20_000 * 20_001) / 4)
    }))

  it.effect("rejects COPY FROM STDIN without crashing", () =>
    Effect.gen(function*() {
      const { url } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(() =>
        withPgClient(url, async (client) => {
          await client.query("create table copied (id int)")
          await client.query("begin")
          await client.query("insert into copied values (1)")
          const rejected = await client.query("copy copied from stdin").then(() => undefined, (error: Pg.DatabaseError) => error)
          expect(rejected?.code).toBe("0A000")
          expect(rejected?.message).toMatch(/COPY FROM STDIN is not supported/)
          // The error aborts the transaction, as any other error does.
          const aborted = await client.query("select 1").then(() => undefined, (error: Pg.DatabaseError) => error)
          expect(aborted?.code).toBe("25P02")
          await client.query("rollback")

          const copiedOut = await client.query("copy (select 1) to stdout")
          expect(copiedOut.command).toBe("COPY")
          expect((await client.query("select count(*)::int as n from copied")).rows[0].n).toBe(0)
        })
      )
    }))

  it.effect("answers startup with parameters and a key", () =>
    Effect.gen(function*() {
      const { port } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        const raw = await openRawClient(port)
        await raw.send(requestPacket(SSL_REQUEST_CODE))
        await raw.waitForType("N")
        await raw.send(startupMessage())
        await raw.waitForType("Z")

        const types = raw.messages.map((message) => message.type)
        expect(types[1]).toBe("R")
        expect(raw.messages[1]!.body.readInt32BE(0)).toBe(0)
        expect(types.slice(-2)).toEqual(["K", "Z"])
        const parameters = new Map(
          raw.messages.filter((message) => message.type === "S").map((message) => {
            const [name, value] = message.body.toString("utf8").split("\0")
            return [name, value] as const
          })
        )
        expect(parameters.get("server_version")).toBe("17.5")
        expect(parameters.get("client_encoding")).toBe("UTF8")
        expect(parameters.get("application_name")).toBe("raw-test")
        expect(raw.messages.at(-1)!.body.toString("latin1")).toBe("I")

        await raw.send(queryMessage("select 1"))
        await raw.waitForType("Z", 2)
        expect(raw.messages.some((message) => message.type === "D")).toBe(true)
        await raw.send(typedMessage("X"))
        await raw.waitForClose()
      })
    }))

  it.effect("closes the socket of a CancelRequest", () =>
    Effect.gen(function*() {
      const { port } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        const raw = await openRawClient(port)
        await raw.send(requestPacket(CANCEL_REQUEST_CODE, [1, 2]))
        await raw.waitForClose()

        expect(raw.messages).toEqual([])
      })
    }))

  it.effect("rejects an invalid message length", () =>
    Effect.gen(function*() {
      const { port, url } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        const raw = await openRawClient(port)
        await raw.send(startupMessage())
        await raw.waitForType("Z")
        await raw.send(Buffer.from([0x51, 0, 0, 0, 2]))
        await raw.waitForClose()

        const error = raw.messages.find((message) => message.type === "E")
        expect(error).toBeDefined()
        expect(errorFields(error!).severity).toBe("FATAL")
        expect(errorFields(error!).code).toBe("08P01")
        // The session is free for the next client.
        expect(await withPgClient(url, async (client) => (await client.query("select 1 as one")).rows[0].one)).toBe(1)
      })
    }))

  it.effect("rejects an unsupported protocol version", () =>
    Effect.gen(function*() {
      const { port } = yield* EmbeddedDatabaseServer
      yield* Effect.promise(async () => {
        const raw = await openRawClient(port)
        await raw.send(requestPacket(2 << 16))
        await raw.waitForClose()

        const error = raw.messages.find((message) => message.type === "E")
        expect(error).toBeDefined()
        expect(errorFields(error!).severity).toBe("FATAL")
        expect(errorFields(error!).code).toBe("0A000")
      })
    }))

  it.effect("serves a PgClient pool through layerServer", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedDatabaseServer
      const clients = 4
      const program = Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const info = yield* DatabaseInfo
        yield* sql`create table pooled (id int primary key, batch int not null)`
        // Eight concurrent transactions over four connections. Each inserts its own ten rows and
        // reads them back; the odd ones then fail, so their rows must be rolled back alone.
        const outcomes = yield* Effect.all(
          Array.from({ length: 8 }, (_, batch) =>
            sql.withTransaction(Effect.gen(function*() {
              const ids = Array.from({ length: 10 }, (_, i) => batch * 10 + i)
              yield* sql`insert into pooled select id, ${batch} from unnest(${ids}::int[]) as id`
              yield* Effect.sleep("20 millis")
              const rows = yield* sql<{ n: number }>`select count(*)::int as n from pooled where batch = ${batch}`
              if (batch % 2 === 1) return yield* Effect.fail(`batch ${batch} fails on purpose`)
              return rows[0]!.n
            })).pipe(Effect.either)),
          { concurrency: "unbounded" }
        )
        const connections = yield* server.connectionCount
        const batches = yield* sql<{ batch: number; n: number }>`
          select batch, count(*)::int as n from pooled group by batch order by batch`
        return { info, outcomes, connections, batches }
      })
      const result = yield* program.pipe(Effect.provide(Database.layerServer(server.url, { maxConnections: clients })))

      expect(result.info).toEqual({ mode: "server", maxConnections: clients })
      expect(result.connections).toBeGreaterThan(1)
      expect(result.outcomes.filter((outcome) => outcome._tag === "Right").map((outcome) => outcome.right)).toEqual([10, 10, 10, 10])
      expect(result.batches).toEqual([0, 2, 4, 6].map((batch) => ({ batch, n: 10 })))
    }))
})

describe("EmbeddedDatabaseServer restart", () => {
  it.live("keeps committed rows across a restart", () =>
    Effect.gen(function*() {
      const parent = yield* Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "sensor-logger-dbserver-")))
      const dataDir = Path.join(parent, "timescaledb")
      const options = { dataDir, host: "127.0.0.1", port: 0 }

      const first = yield* Scope.make()
      const server = yield* makeEmbeddedDatabaseServer(options).pipe(Scope.extend(first))
      const open = new Pg.Client({ connectionString: server.url })
      const shutdownErrors: Array<string> = []
      open.on("error", (error) => shutdownErrors.push(error.message))
      yield* Effect.promise(async () => {
        await withPgClient(server.url, async (client) => {
          await client.query("create table kept (id int primary key)")
          await client.query("insert into kept select * from generate_series(1, 1000)")
          await client.query("create extension if not exists timescaledb")
          await client.query("create table series (time timestamptz not null, value int)")
          await client.query("select create_hypertable('series', 'time')")
          await client.query("insert into series values ('2024-01-01', 1)")
        })
        await open.connect()
        await open.query("begin")
        await open.query("insert into kept values (5000)")
      })
      yield* Scope.close(first, Exit.void)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))

      // pg reports the server's FATAL error, then the closed socket.
      expect(shutdownErrors[0]).toBe("terminating connection due to administrator command")
      const lockExists = yield* Effect.promise(() => Fs.access(`${dataDir}.lock`).then(() => true, () => false))
      expect(lockExists).toBe(false)

      const after = yield* Effect.scoped(Effect.gen(function*() {
        const again = yield* makeEmbeddedDatabaseServer(options)
        return yield* Effect.promise(() =>
          withPgClient(again.url, async (client) => {
            // The first statement of the new session is an insert into the hypertable, as from a
            // client that stayed connected to the pool while the server restarted.
            await client.query("insert into series values ('2024-01-02', 2)")
            const kept = (await client.query("select count(*)::int as n, max(id) as top from kept")).rows[0]
            const series = (await client.query("select count(*)::int as n from series")).rows[0]
            return { kept, series }
          })
        )
      }))

      expect(after.kept).toEqual({ n: 1000, top: 1000 })
      expect(after.series).toEqual({ n: 2 })
      yield* Effect.promise(() => Fs.rm(parent, { recursive: true, force: true }))
    }), 120_000)
})
