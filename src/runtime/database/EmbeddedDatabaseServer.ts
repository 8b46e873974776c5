/**
 * The embedded TimescaleDB served over TCP: a server on a loopback address
 * that speaks the PostgreSQL frontend/backend protocol in front of one PGlite
 * instance, so that several processes can share one embedded database
 * through the `pg` driver (`Database.layerServer` with `DATABASE_URL`).
 *
 * Every client connection shares the single PGlite session. A connection
 * owns the session from its first message until PGlite reports it idle,
 * outside a transaction (see `DatabaseServerConnection.ts`), and other
 * connections wait meanwhile. Transactions therefore never interleave, and a
 * client that disconnects inside a transaction has it rolled back before the
 * next client runs.
 *
 * Session state is shared between clients: a plain `SET`, a temporary table
 * or a named prepared statement of one client is seen by every other one.
 * Clients must use `SET LOCAL` inside a transaction and unnamed statements
 * (the `pg` default when a query has no `name`). Further limits:
 * - no authentication and no TLS: any client that reaches the port may read
 *   and write, so keep the server on loopback;
 * - a CancelRequest closes its socket and cancels nothing, because PGlite
 *   runs each statement to completion on the server's thread;
 * - a client that holds a transaction open and waits for a statement on
 *   another connection of the same server waits forever;
 * - startup parameters other than `application_name` are ignored, because
 *   applying them would change the session of every client;
 * - `COPY ... FROM STDIN` fails with SQLSTATE 0A000, because it would crash
 *   this PGlite build (see `CopyFromStdin.ts`). Should the instance fail in
 *   another way, `failed` fails.
 *
 * @module
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { randomInt } from "node:crypto"
import * as Net from "node:net"
import { ADMIN_SHUTDOWN, DatabaseServerConnection, type SharedSession } from "./DatabaseServerConnection.ts"
import { type EmbeddedDatabaseError, makeEmbeddedDatabase } from "./EmbeddedDatabase.ts"
import { SessionLease } from "./PgliteSession.ts"

/** Maximum time shutdown waits for clients to be rolled back and disconnected before PGlite closes. */
const SHUTDOWN_TIMEOUT = Duration.seconds(10)

/** Run-time parameters that PostgreSQL 17 reports to a client after startup, besides `application_name`. */
const REPORTED_PARAMETERS = [
  "client_encoding",
  "DateStyle",
  "default_transaction_read_only",
  "in_hot_standby",
  "integer_datetimes",
  "IntervalStyle",
  "is_superuser",
  "scram_iterations",
  "server_encoding",
  "server_version",
  "session_authorization",
  "standard_conforming_strings",
  "TimeZone"
] as const

/** User and database name in the server's URL. The server accepts any, as PGlite has only these. */
const DEFAULT_USER = "postgres"
const DEFAULT_DATABASE = "postgres"

/** Address of the server: `DATABASE_SERVER_HOST` (default 127.0.0.1) and `DATABASE_SERVER_PORT` (default 5432; 0 picks a free port). */
export const databaseServerConfig = Config.all({
  host: Config.string("DATABASE_SERVER_HOST").pipe(
    Config.validate({
      message: "DATABASE_SERVER_HOST must not be empty. Set it to an address such as 127.0.0.1",
      validation: (host) => host.trim() !== ""
    }),
    Config.withDefault("127.0.0.1")
  ),
  port: Config.integer("DATABASE_SERVER_PORT").pipe(
    Config.validate({
      message: "DATABASE_SERVER_PORT must be a TCP port from 0 to 65535 (0 picks a free one)",
      validation: (port) => port >= 0 && port <= 65_535
    }),
    Config.withDefault(5432)
  )
})

/** Options of {@link makeEmbeddedDatabaseServer}. */
export interface EmbeddedDatabaseServerOptions {
  /** Data directory of the embedded database: a filesystem path or `memory://`, as for `EmbeddedDatabase`. */
  readonly dataDir: string
  /** Address to listen on. */
  readonly host: string
  /** Port to listen on; 0 picks a free one. */
  readonly port: number
}

/** Reason code of a {@link DatabaseServerError}. */
export type DatabaseServerErrorReason = "ListenFailed" | "InstanceFailed"

/** The server could not listen, or its PGlite instance failed while running a client's message. */
export class DatabaseServerError extends Data.TaggedError("DatabaseServerError")<{
  readonly reason: DatabaseServerErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}

/** A running embedded database server. */
export interface EmbeddedDatabaseServerService {
  /** Absolute path of the data directory, or `memory://`. */
  readonly dataDir: string
  readonly host: string
  /** The port listened on, the chosen one when the options asked for 0. */
  readonly port: number
  /** `postgres://postgres@host:port/postgres`, a `DATABASE_URL` for other processes. */
  readonly url: string
  /** Fails once the PGlite instance failed to run a message and is unusable. Never succeeds. */
  readonly failed: Effect.Effect<never, DatabaseServerError>
  /** Number of open client connections. */
  readonly connectionCount: Effect.Effect<number>
}

/** The embedded database server of this process. */
export class EmbeddedDatabaseServer extends Context.Tag("sensor-logger/EmbeddedDatabaseServer")<
  EmbeddedDatabaseServer,
  EmbeddedDatabaseServerService
>() {
  /** Opens the embedded database and serves it for the layer's lifetime. */
  static readonly layer = (
    options: EmbeddedDatabaseServerOptions
  ): Layer.Layer<EmbeddedDatabaseServer, EmbeddedDatabaseError | DatabaseServerError> =>
    Layer.scoped(EmbeddedDatabaseServer, makeEmbeddedDatabaseServer(options))
}

const messageOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Returns whether `host` names a loopback address, the only kind of address this server is safe on. */
const isLoopbackHost = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)

const formatUrl = (host: string, port: number): string => {
  const urlHost = Net.isIPv6(host) ? `[${host}]` : host
  return `postgres://${DEFAULT_USER}@${urlHost}:${port}/${DEFAULT_DATABASE}`
}

const listen = (server: Net.Server, host: string, port: number): Effect.Effect<number, DatabaseServerError> =>
  Effect.async<number, DatabaseServerError>((resume) => {
    const onError = (cause: Error & { code?: unknown }) => {
      const reason = cause.code === "EADDRINUSE"
        ? "the port is in use; set DATABASE_SERVER_PORT to a free port (0 picks one)"
        : cause.message
      resume(
        Effect.fail(
          new DatabaseServerError({ reason: "ListenFailed", message: `Failed to listen on ${host}:${port}: ${reason}`, cause })
        )
      )
    }
    server.once("error", onError)
    server.listen({ host, port }, () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as Net.AddressInfo).port))
    })
  })

/**
 * Opens the embedded database in `options.dataDir` (with the lock file and
 * extension options of `EmbeddedDatabase`) and serves it on
 * `options.host`:`options.port` for the scope's lifetime.
 *
 * Closing the scope stops accepting connections, then rolls back and
 * disconnects every client, waiting at most 10 seconds. Each client gets
 * FATAL 57P01, as from a PostgreSQL shutdown. PGlite closes last, so the next
 * start on the same data directory finds every committed row.
 */
export const makeEmbeddedDatabaseServer = (
  options: EmbeddedDatabaseServerOptions
): Effect.Effect<EmbeddedDatabaseServerService, EmbeddedDatabaseError | DatabaseServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const embedded = yield* makeEmbeddedDatabase(options.dataDir)
    const reported = yield* Effect.promise(() =>
      embedded.instance.query<{ name: string; setting: string }>(
        "select name, current_setting(name) as setting from unnest($1::text[]) as name",
        [REPORTED_PARAMETERS]
      )
    )
    const session: SharedSession = {
      target: embedded.instance,
      lease: new SessionLease(),
      parameters: reported.rows.map((row) => [row.name, row.setting] as const)
    }

    const runtime = yield* Effect.runtime<never>()
    const runLog = (log: Effect.Effect<void>) => void Runtime.runFork(runtime)(log)
    const failed = yield* Deferred.make<never, DatabaseServerError>()
    const connections = new Set<DatabaseServerConnection>()
    let nextProcessId = 1

    const server = Net.createServer((socket) => {
      const processId = nextProcessId++
      const annotations = { processId, client: `${socket.remoteAddress}:${socket.remotePort}` }
      const connection = new DatabaseServerConnection(socket, session, processId, randomInt(2 ** 31), {
        onStartup: (parameters) =>
          runLog(
            Effect.logDebug("Client connected").pipe(
              Effect.annotateLogs({ ...annotations, applicationName: parameters["application_name"] ?? "" })
            )
          ),
        onProtocolError: (message) =>
          runLog(Effect.logWarning("Closed a client that violated the protocol").pipe(
            Effect.annotateLogs({ ...annotations, error: message })
          )),
        onExecuteError: (cause) => {
          const error = new DatabaseServerError({
            reason: "InstanceFailed",
            message: `The embedded database failed to run a message of client ${processId}: ${messageOf(cause)}`,
            cause
          })
          runLog(Effect.logError(error.message, Cause.die(cause)).pipe(Effect.annotateLogs(annotations)))
          Deferred.unsafeDone(failed, Effect.fail(error))
        },
        onSessionResetError: (cause) =>
          runLog(
            Effect.logWarning(
              "Failed to roll back the transaction of a closed client; the next client may start inside it",
              Cause.die(cause)
            ).pipe(Effect.annotateLogs(annotations))
          ),
        onClose: () => {
          connections.delete(connection)
          runLog(Effect.logDebug("Client disconnected").pipe(Effect.annotateLogs(annotations)))
        }
      })
      connections.add(connection)
    })

    const port = yield* Effect.acquireRelease(
      listen(server, options.host, options.port),
      () =>
        Effect.promise(async () => {
          const closed = new Promise<void>((resolve) => server.close(() => resolve()))
          await Promise.all([...connections].map((connection) => connection.close(ADMIN_SHUTDOWN)))
          await closed
        }).pipe(
          Effect.interruptible,
          Effect.timeout(SHUTDOWN_TIMEOUT),
          Effect.matchCauseEffect({
            onSuccess: () => Effect.logInfo("Database server stopped"),
            onFailure: (cause) =>
              Effect.logWarning(
                `Clients were still connected ${Duration.format(SHUTDOWN_TIMEOUT)} after shutdown began; disconnecting them and closing the database`,
                cause
              ).pipe(
                Effect.annotateLogs({ connections: connections.size }),
                Effect.zipRight(Effect.sync(() => connections.forEach((connection) => connection.destroy())))
              )
          })
        )
    )
    if (!isLoopbackHost(options.host)) {
      yield* Effect.logWarning(
        "The database server listens on an address that is not loopback. It has no authentication and no TLS, so every host that reaches the port can read and write the database"
      ).pipe(Effect.annotateLogs({ host: options.host, port }))
    }
    return {
      dataDir: embedded.dataDir,
      host: options.host,
      port,
      url: formatUrl(options.host, port),
      failed: Deferred.await(failed),
      connectionCount: Effect.sync(() => connections.size)
    }
  })
