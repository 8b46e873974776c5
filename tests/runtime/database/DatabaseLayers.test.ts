import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { SqlClient, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, HashMap, Layer, Logger, Option, Redacted } from "effect"
import * as Pg from "pg"
import {
  Database,
  DatabaseConfig,
  DatabaseInfo,
  embeddedDataDir,
  parseInt8,
  pgTypeParsers,
  redactDatabaseUrl,
  summarizeDatabaseUrl
} from "../../../src/runtime/database/Database.ts"
import { EmbeddedDatabase } from "../../../src/runtime/database/EmbeddedDatabase.ts"

const readConfig = (env: Record<string, string>) =>
  Effect.withConfigProvider(DatabaseConfig, ConfigProvider.fromMap(new Map(Object.entries(env))))

/** Runs `effect` with a logger that records each message with its annotations as one string. */
const captureLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ annotations, message }) => {
      const fields = HashMap.toEntries(annotations).map(([key, value]) => `${key}=${String(value)}`)
      lines.push([String(message), ...fields].join(" "))
    })
    const result = yield* Effect.either(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
    return { result, lines }
  })

/** A loopback port with nothing listening on it. */
const closedLoopbackPort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })
)

/**
 * A TCP server on 127.0.0.1 that bridges each connection to the embedded
 * database through a PgliteStream, so server mode can be tested without a
 * PostgreSQL server. Its single session allows one connection at a time.
 */
const loopbackServer = Effect.gen(function*() {
  const { makeStream } = yield* EmbeddedDatabase
  const server = Net.createServer((socket) => {
    const stream = makeStream()
    socket.on("error", () => stream.destroy())
    stream.on("error", () => socket.destroy())
    socket.pipe(stream).pipe(socket)
  })
  yield* Effect.acquireRelease(
    Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))),
    () => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  )
  return (server.address() as Net.AddressInfo).port
})

describe("DatabaseConfig", () => {
  it.effect("uses defaults when nothing is set", () =>
    Effect.gen(function*() {
      const settings = yield* readConfig({})

      expect(Option.isNone(settings.url)).toBe(true)
      expect(settings.dataDir).toBe("./data")
      expect(settings.maxConnections).toBe(10)
    }))

  it.effect("reads all settings", () =>
    Effect.gen(function*() {
      const settings = yield* readConfig({
        DATABASE_URL: " postgres://alice:s3cret@db.internal:6543/metrics ",
        DATA_DIR: "/var/lib/sensor-logger",
        DATABASE_MAX_CONNECTIONS: "25"
      })

      expect(Option.map(settings.url, Redacted.value)).toEqual(
        Option.some("postgres://alice:s3cret@db.internal:6543/metrics")
      )
      expect(settings.dataDir).toBe("/var/lib/sensor-logger")
      expect(settings.maxConnections).toBe(25)
    }))

  it.effect("treats an empty DATABASE_URL as unset", () =>
    Effect.gen(function*() {
      const settings = yield* readConfig({ DATABASE_URL: "" })

      expect(Option.isNone(settings.url)).toBe(true)
    }))

  const invalidUrls: Array<[url: string, expected: string]> = [
    ["postgres//alice:s3cret@db/metrics", "DATABASE_URL is not a valid URL"],
    ["mysql://alice:s3cret@db/metrics", "DATABASE_URL has the scheme \"mysql:\""]
  ]

  it.effect.each(invalidUrls)("rejects DATABASE_URL %s", ([url, expected]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(readConfig({ DATABASE_URL: url }))

      expect(String(error)).toContain(expected)
      expect(String(error)).not.toContain("s3cret")
    }))

  it.effect.each(["0", "-3", "1.5", "many"])("rejects DATABASE_MAX_CONNECTIONS=%s", (value) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(readConfig({ DATABASE_MAX_CONNECTIONS: value }))

      expect(String(error)).toContain("DATABASE_MAX_CONNECTIONS")
    }))

  it.effect("rejects an empty DATA_DIR", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(readConfig({ DATA_DIR: " " }))

      expect(String(error)).toContain("DATA_DIR must not be empty")
    }))

  it("places the embedded database under DATA_DIR", () => {
    expect(embeddedDataDir("./data")).toBe(Path.join("data", "timescaledb"))
    expect(embeddedDataDir("/srv/data")).toBe("/srv/data/timescaledb")
    expect(embeddedDataDir("memory://")).toBe("memory://")
  })
})

describe("database URL redaction", () => {
  it("drops password and query parameters", () => {
    const url = "postgresql://alice:s3cret@db.internal:6543/metrics?sslmode=require&password=other"

    expect(redactDatabaseUrl(url)).toBe("postgres://alice@db.internal:6543/metrics")
    expect(summarizeDatabaseUrl(url)).toEqual({ host: "db.internal", port: "6543", database: "metrics", user: "alice" })
  })

  it("fills in PostgreSQL defaults", () => {
    expect(summarizeDatabaseUrl("postgres:///metrics")).toEqual({
      host: "localhost",
      port: "5432",
      database: "metrics",
      user: ""
    })
  })
})

describe("pgTypeParsers", () => {
  it("parses int8 and numeric text as numbers", () => {
    expect(pgTypeParsers.getTypeParser(20)("-9007199254740991")).toBe(-9007199254740991)
    expect(pgTypeParsers.getTypeParser(1700, "text")("-0.125")).toBe(-0.125)
    expect(pgTypeParsers.getTypeParser(1700)("Infinity")).toBe(Infinity)
  })

  it("rejects int8 beyond the safe range", () => {
    expect(() => parseInt8("9007199254740992")).toThrow(RangeError)
    expect(() => parseInt8("-9223372036854775808")).toThrow(/outside the range/)
  })

  it("keeps pg's defaults for other types", () => {
    for (const oid of [16, 21, 23, 700, 701, 1016, 1114, 1184, 3802]) {
      expect(pgTypeParsers.getTypeParser(oid)).toBe(Pg.types.getTypeParser(oid))
    }
    expect(pgTypeParsers.getTypeParser(20, "binary")).toBe(Pg.types.getTypeParser(20, "binary"))
  })
})

describe("Database.layerServer", () => {
  it.live("fails with SqlError when the server is unreachable", () =>
    Effect.gen(function*() {
      const port = yield* closedLoopbackPort
      const url = `postgres://sensor:s3cret@127.0.0.1:${port}/metrics`

      const { lines, result } = yield* captureLogs(Effect.scoped(Layer.build(Database.layerServer(url))))

      expect(Either.isLeft(result)).toBe(true)
      expect(Either.getLeft(result).pipe(Option.getOrThrow)).toBeInstanceOf(SqlError.SqlError)
      const modeLine = lines.find((line) => line.startsWith("Using the TimescaleDB server"))
      expect(modeLine).toContain("databaseMode=server")
      expect(modeLine).toContain("host=127.0.0.1")
      expect(modeLine).toContain(`port=${port}`)
      expect(lines.join("\n")).not.toContain("s3cret")
    }))

  it.live("selects server mode from DATABASE_URL", () =>
    Effect.gen(function*() {
      const port = yield* closedLoopbackPort
      const provider = ConfigProvider.fromMap(new Map([["DATABASE_URL", `postgres://u:s3cret@127.0.0.1:${port}/db`]]))

      const { lines, result } = yield* captureLogs(
        Effect.scoped(Layer.build(Database.layer)).pipe(Effect.withConfigProvider(provider))
      )

      expect(Either.getLeft(result).pipe(Option.getOrThrow)).toBeInstanceOf(SqlError.SqlError)
      expect(lines.some((line) => line.includes("databaseMode=server"))).toBe(true)
      expect(lines.join("\n")).not.toContain("s3cret")
    }))

  it.scopedLive("selects embedded mode without DATABASE_URL", () =>
    Effect.gen(function*() {
      const root = yield* Effect.acquireRelease(
        Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "sensor-logger-layer-"))),
        (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
      )
      const provider = ConfigProvider.fromMap(new Map([["DATA_DIR", root]]))

      const info = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Database.layer)
        const sql = yield* Effect.provide(SqlClient.SqlClient, context)
        yield* sql`select 1`
        return yield* Effect.provide(DatabaseInfo, context)
      })).pipe(Effect.withConfigProvider(provider))

      expect(info).toEqual({ mode: "embedded", dataDir: Path.join(root, "timescaledb"), maxConnections: 1 })
    }))
})

const ServerOverLoopback = Layer.unwrapScoped(Effect.map(
  loopbackServer,
  (port) => Database.layerServer(`postgres://postgres:any-password@127.0.0.1:${port}/postgres`, { maxConnections: 1 })
)).pipe(Layer.provide(EmbeddedDatabase.layer("memory://")))

layer(ServerOverLoopback)("Database.layerServer over TCP", (it) => {
  it.effect("queries with the shared type parsers", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const pg = yield* PgClient.PgClient
      const info = yield* DatabaseInfo

      const rows = yield* sql`select 7::int8 as big, 2.5::numeric as n, ${[1, 2]}::int4[] as list`

      expect(rows).toEqual([{ big: 7, n: 2.5, list: [1, 2] }])
      expect(info).toEqual({ mode: "server", maxConnections: 1 })
      expect(pg.config.applicationName).toBe("sensor-logger")
      expect(pg.config.host).toBe("127.0.0.1")
    }))
})
