/**
 * The database of sensor-logger: one `@effect/sql-pg` `PgClient` (on the `pg`
 * driver) that talks either to a TimescaleDB server (`DATABASE_URL` set) or to
 * the embedded TimescaleDB in `${DATA_DIR}/timescaledb` (see
 * `EmbeddedDatabase.ts`).
 *
 * Array parameters: a JS array interpolated into a `sql` template is bound as
 * ONE parameter, which `pg` sends as a PostgreSQL array literal. Cast it in
 * the SQL text:
 *
 * ```ts
 * sql`insert into readings (time, value)
 *     select * from unnest(${times}::int8[], ${values}::float8[])`
 * ```
 *
 * This holds for `@effect/sql` 0.52.1, whose compiler turns every value that
 * is not a fragment or helper into a single placeholder. `sql.in(array)` is
 * the helper that expands an array into a list `($1,$2,...)`, for `IN`.
 * `sql.unsafe(text, [times, values])` binds arrays the same way as the
 * template. Elements go through `pg`'s text serializer: numbers as
 * `String(n)`, `null` as NULL, `Date` as a timestamp with offset.
 *
 * Type parsers in both modes: int8 (oid 20) and numeric (oid 1700) come back
 * as JS numbers, see {@link pgTypeParsers}. Every other type, arrays of int8
 * and numeric included, keeps `pg`'s default parser.
 *
 * @module
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Path from "node:path"
import * as Pg from "pg"
import { EmbeddedDatabase, type EmbeddedDatabaseError, MEMORY_DATA_DIR } from "./EmbeddedDatabase.ts"
import { serverPoolLayer } from "./ServerPool.ts"

/** `application_name` reported to the server. PGlite ignores it. */
export const APPLICATION_NAME = "sensor-logger"

/** Pool size in server mode when `DATABASE_MAX_CONNECTIONS` is not set. */
export const DEFAULT_MAX_CONNECTIONS = 10

/** Name of the embedded database directory under `DATA_DIR`. */
export const EMBEDDED_DIRECTORY_NAME = "timescaledb"

/** Settings read from the environment by {@link DatabaseConfig}. */
export interface DatabaseSettings {
  /** `DATABASE_URL`: server mode when present. An empty value counts as unset. */
  readonly url: Option.Option<Redacted.Redacted>
  /** `DATA_DIR`, default `./data`. The embedded database lives in `${dataDir}/timescaledb`, or in memory for `memory://`. */
  readonly dataDir: string
  /** `DATABASE_MAX_CONNECTIONS`, default 10: pool size in server mode. Embedded mode always uses 1. */
  readonly maxConnections: number
}

/** Returns why `url` is not a usable connection URL, without repeating it (it may contain a password). */
const checkDatabaseUrl = (url: string): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return "DATABASE_URL is not a valid URL. Expected postgres://user:password@host:5432/database"
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return `DATABASE_URL has the scheme "${parsed.protocol}". Expected postgres:// or postgresql://`
  }
  return undefined
}

const databaseUrlConfig: Config.Config<Option.Option<Redacted.Redacted>> = Config.redacted("DATABASE_URL").pipe(
  Config.mapOrFail((url) => {
    const text = Redacted.value(url).trim()
    if (text === "") {
      return Either.right(Option.none())
    }
    const problem = checkDatabaseUrl(text)
    return problem === undefined
      ? Either.right(Option.some(Redacted.make(text)))
      : Either.left(ConfigError.InvalidData(["DATABASE_URL"], problem))
  }),
  Config.withDefault(Option.none())
)

/** `DATA_DIR`, default `./data`: the directory under which the embedded database lives. */
export const dataDirConfig: Config.Config<string> = Config.string("DATA_DIR").pipe(
  Config.validate({
    message: "DATA_DIR must not be empty. Set it to a directory path, or unset it to use ./data",
    validation: (value) => value.trim() !== ""
  }),
  Config.withDefault("./data")
)

/** `DATABASE_MAX_CONNECTIONS`, default 10: the size of a connection pool to a database server. */
export const maxConnectionsConfig: Config.Config<number> = Config.integer("DATABASE_MAX_CONNECTIONS").pipe(
  Config.validate({
    message: "DATABASE_MAX_CONNECTIONS must be an integer of at least 1",
    validation: (value) => value >= 1
  }),
  Config.withDefault(DEFAULT_MAX_CONNECTIONS)
)

/** Environment settings of the database: `DATABASE_URL`, `DATA_DIR`, `DATABASE_MAX_CONNECTIONS`. */
export const DatabaseConfig: Config.Config<DatabaseSettings> = Config.all({
  url: databaseUrlConfig,
  dataDir: dataDirConfig,
  maxConnections: maxConnectionsConfig
})

/** The kind of database the client talks to, for code that behaves differently on the embedded single session. */
export type DatabaseInfoShape =
  | {
    readonly mode: "server"
    /** Pool size of the PgClient. */
    readonly maxConnections: number
  }
  | {
    readonly mode: "embedded"
    /** Absolute path of the data directory, or `memory://`. */
    readonly dataDir: string
    /** Always 1: PGlite is one session, and concurrent statements queue behind each other. */
    readonly maxConnections: 1
  }

/** The mode of the active database, provided next to `PgClient` by every layer of this module. */
export class DatabaseInfo extends Context.Tag("sensor-logger/DatabaseInfo")<DatabaseInfo, DatabaseInfoShape>() {}

/**
 * Parses int8 text to a number, failing for values outside ±(2^53 - 1) so that
 * no id or count is silently rounded. `pg` turns the thrown error into a
 * failed query (a `SqlError` whose cause is this RangeError).
 */
export const parseInt8 = (text: string): number => {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(
      `int8 value ${text} is outside the range of JavaScript safe integers (±9007199254740991). Cast it to text in SQL to read it exactly`
    )
  }
  return value
}

/** Parses numeric text to the nearest double. `NaN` and `±Infinity` map to the same JS values. */
export const parseNumeric = (text: string): number => Number(text)

const INT8_OID = 20
const NUMERIC_OID = 1700

/**
 * `pg` type parsers for `PgClientConfig.types`: int8 with {@link parseInt8},
 * numeric with {@link parseNumeric} (precision beyond a double is lost), every
 * other type with `pg`'s defaults. The global `pg.types` registry is not
 * modified.
 */
export const pgTypeParsers: Pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (format !== "binary") {
      if (oid === INT8_OID) {
        return parseInt8
      }
      if (oid === NUMERIC_OID) {
        return parseNumeric
      }
    }
    return format === undefined ? Pg.types.getTypeParser(oid) : Pg.types.getTypeParser(oid, format as "text")
  }) as Pg.CustomTypesConfig["getTypeParser"]
}

/** Connection fields of a database URL that are safe to log: no password, no query parameters. */
export interface DatabaseUrlSummary {
  readonly host: string
  readonly port: string
  readonly database: string
  readonly user: string
}

/**
 * Returns the loggable parts of a `postgres://` URL, with the PostgreSQL
 * defaults for missing parts. The password and query parameters (which may
 * hold `password=` or `sslkey=`) are dropped.
 */
export const summarizeDatabaseUrl = (url: string): DatabaseUrlSummary => {
  try {
    const parsed = new URL(url)
    return {
      host: parsed.hostname === "" ? "localhost" : parsed.hostname,
      port: parsed.port === "" ? "5432" : parsed.port,
      database: decodeURIComponent(parsed.pathname.replace(/^\//, "")),
      user: decodeURIComponent(parsed.username)
    }
  } catch {
    return { host: "(unparsable URL)", port: "", database: "", user: "" }
  }
}

/** Returns `url` without password and query parameters, for logs and messages. */
export const redactDatabaseUrl = (url: string): string => {
  const summary = summarizeDatabaseUrl(url)
  if (summary.port === "") {
    return "(unparsable URL)"
  }
  const user = summary.user === "" ? "" : `${encodeURIComponent(summary.user)}@`
  return `postgres://${user}${summary.host}:${summary.port}/${encodeURIComponent(summary.database)}`
}

/** Options of {@link layerServer}. */
export interface ServerOptions {
  /** Pool size, default {@link DEFAULT_MAX_CONNECTIONS}. */
  readonly maxConnections?: number | undefined
}

type DatabaseLayer<E> = Layer.Layer<PgClient.PgClient | SqlClient.SqlClient | DatabaseInfo, E>

/**
 * Connects to the TimescaleDB server at `url` (`postgres://...`). The layer
 * fails with a `SqlError` when the first connection fails, after at most 5
 * seconds (PgClient's default connect timeout).
 */
const layerServer = (
  url: Redacted.Redacted | string,
  options: ServerOptions = {}
): DatabaseLayer<SqlError> => {
  const redactedUrl = typeof url === "string" ? Redacted.make(url) : url
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  const info: DatabaseInfoShape = { mode: "server", maxConnections }
  const logged = Effect.logInfo("Using the TimescaleDB server").pipe(
    Effect.annotateLogs({ databaseMode: "server", maxConnections, ...summarizeDatabaseUrl(Redacted.value(redactedUrl)) }),
    Effect.as(info)
  )
  return Layer.merge(
    serverPoolLayer({
      url: redactedUrl,
      maxConnections,
      applicationName: APPLICATION_NAME,
      types: pgTypeParsers
    }),
    Layer.effect(DatabaseInfo, logged)
  )
}

/**
 * Opens the embedded TimescaleDB in `dataDir` (a filesystem path, or
 * `memory://` for an in-memory database that is lost on release) and connects
 * a PgClient with one connection to it.
 *
 * NOTE: a running statement blocks the Node.js event loop until it completes,
 * because PGlite executes in WASM on this thread. Timeouts and interruption
 * therefore act only between statements. Do not use `PgClient.listen`: it
 * opens a second connection, which waits for the pool's connection to close
 * and then keeps the single session, so pool queries wait while it listens.
 */
const layerEmbedded = (dataDir: string): DatabaseLayer<SqlError | EmbeddedDatabaseError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const embedded = yield* EmbeddedDatabase
    const info: DatabaseInfoShape = { mode: "embedded", dataDir: embedded.dataDir, maxConnections: 1 }
    yield* Effect.logInfo("Using the embedded TimescaleDB").pipe(
      Effect.annotateLogs({ databaseMode: "embedded", dataDir: embedded.dataDir })
    )
    return Layer.merge(
      PgClient.layer({
        stream: embedded.makeStream,
        maxConnections: 1,
        // PGlite requests MD5 authentication and accepts any password. It ignores startup parameters such as application_name.
        username: "postgres",
        password: Redacted.make("postgres"),
        database: "postgres",
        applicationName: APPLICATION_NAME,
        types: pgTypeParsers
      }),
      Layer.succeed(DatabaseInfo, info)
    )
  })).pipe(Layer.provide(EmbeddedDatabase.layer(dataDir)))

/** Returns the embedded data directory for a `DATA_DIR` value. */
export const embeddedDataDir = (dataDir: string): string =>
  dataDir.startsWith(MEMORY_DATA_DIR) ? dataDir : Path.join(dataDir, EMBEDDED_DIRECTORY_NAME)

/** Reads {@link DatabaseConfig} and picks server mode when `DATABASE_URL` is set, embedded mode otherwise. */
const layer: DatabaseLayer<ConfigError.ConfigError | SqlError | EmbeddedDatabaseError> = Layer.unwrapEffect(
  Effect.map(DatabaseConfig, (settings) =>
    Option.match(settings.url, {
      onSome: (url) => layerServer(url, { maxConnections: settings.maxConnections }),
      onNone: () => layerEmbedded(embeddedDataDir(settings.dataDir))
    }))
)

/**
 * Layers that provide `PgClient.PgClient`, `SqlClient.SqlClient` and
 * {@link DatabaseInfo}:
 * - `layer` reads {@link DatabaseConfig} from the environment;
 * - `layerServer(url, { maxConnections })` connects to a server;
 * - `layerEmbedded(dataDir)` opens the embedded database (`memory://` in tests).
 */
export const Database = {
  layer,
  layerServer,
  layerEmbedded
} as const
