import { spawn } from "node:child_process"
import { once } from "node:events"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Database, DatabaseInfo } from "../../../src/runtime/database/Database.ts"
import { EmbeddedDatabaseError, makeEmbeddedDatabase } from "../../../src/runtime/database/EmbeddedDatabase.ts"

const makeTempDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "sensor-logger-embedded-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

const exists = (path: string) => Effect.promise(() => Fs.access(path).then(() => true, () => false))

const writeLock = (lockPath: string, owner: { pid: number; hostname: string }) =>
  Effect.promise(() => Fs.writeFile(lockPath, JSON.stringify({ ...owner, createdAt: "2024-01-01T00:00:00.000Z" })))

/** Starts a Node process that idles, and kills it when the scope closes. */
const spawnIdleProcess = Effect.acquireRelease(
  Effect.sync(() => spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" })),
  (child) => Effect.sync(() => child.kill())
)

/** Spawns a process, waits for it to exit and returns its pid, which is then free. */
const deadPid = Effect.promise(async () => {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" })
  await once(child, "exit")
  return child.pid!
})

describe("EmbeddedDatabase", () => {
  it.scopedLive("keeps data across close and reopen", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "nested", "data", "timescaledb")

      yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Database.layerEmbedded(dataDir))
        const sql = yield* Effect.provide(SqlClient.SqlClient, context)
        const info = yield* Effect.provide(DatabaseInfo, context)
        yield* sql`create extension if not exists timescaledb`
        yield* sql`create table kept (time timestamptz not null, value float8)`
        yield* sql`select create_hypertable('kept', by_range('time'))`
        yield* sql`insert into kept select t, 1.5 from generate_series(
          '2024-01-01'::timestamptz, '2024-01-10'::timestamptz, interval '1 hour') as t`

        expect(info).toEqual({ mode: "embedded", dataDir, maxConnections: 1 })
        expect(yield* exists(`${dataDir}.lock`)).toBe(true)
      }))
      expect(yield* exists(`${dataDir}.lock`)).toBe(false)

      const reopened = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(Database.layerEmbedded(dataDir))
        const sql = yield* Effect.provide(SqlClient.SqlClient, context)
        return yield* sql<{ n: number; total: number; hypertables: number }>`
          select count(*) as n, sum(value) as total,
            (select count(*) from timescaledb_information.hypertables where hypertable_name = 'kept') as hypertables
          from kept`
      }))

      expect(reopened).toEqual([{ n: 217, total: 217 * 1.5, hypertables: 1 }])
    }))

  it.scopedLive("rejects a second open in the same process", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "timescaledb")
      yield* makeEmbeddedDatabase(dataDir)

      const error = yield* Effect.flip(Effect.scoped(makeEmbeddedDatabase(dataDir)))

      expect(error).toBeInstanceOf(EmbeddedDatabaseError)
      expect(error.reason).toBe("DataDirInUse")
      expect(error.message).toContain(dataDir)
      expect(error.message).toContain("already open in this process")
    }))

  it.scopedLive("replaces a stale lock file", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "timescaledb")
      const pid = yield* deadPid
      yield* writeLock(`${dataDir}.lock`, { pid, hostname: Os.hostname() })

      const database = yield* makeEmbeddedDatabase(dataDir)
      const lock = JSON.parse(yield* Effect.promise(() => Fs.readFile(`${dataDir}.lock`, "utf8")))

      expect(database.dataDir).toBe(dataDir)
      expect(lock.pid).toBe(process.pid)
    }))

  it.scoped("rejects a data directory locked by a live process", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "timescaledb")
      const holder = yield* spawnIdleProcess
      yield* writeLock(`${dataDir}.lock`, { pid: holder.pid!, hostname: Os.hostname() })

      const error = yield* Effect.flip(makeEmbeddedDatabase(dataDir))

      expect(error.reason).toBe("DataDirInUse")
      expect(error.message).toContain(`in use by another process (pid ${holder.pid}`)
      expect(error.message).toContain(dataDir)
      expect(error.message).toContain(`delete ${dataDir}.lock`)
      expect(yield* exists(dataDir)).toBe(false)
    }))

  it.scoped("treats a lock from another host as held", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "timescaledb")
      yield* writeLock(`${dataDir}.lock`, { pid: 1, hostname: `not-${Os.hostname()}` })

      const error = yield* Effect.flip(makeEmbeddedDatabase(dataDir))

      expect(error.reason).toBe("DataDirInUse")
      expect(error.message).toContain(`on host not-${Os.hostname()}`)
    }))

  it.scoped("rejects an unsupported data directory", () =>
    Effect.gen(function*() {
      const unsupported = yield* Effect.flip(makeEmbeddedDatabase("idb://sensor-logger"))
      const empty = yield* Effect.flip(makeEmbeddedDatabase(" "))

      expect(unsupported.reason).toBe("InvalidDataDir")
      expect(unsupported.message).toContain("idb://sensor-logger")
      expect(empty.reason).toBe("InvalidDataDir")
    }))

  it.scopedLive("names the data directory when opening fails", () =>
    Effect.gen(function*() {
      const root = yield* makeTempDir
      const dataDir = Path.join(root, "not-a-directory")
      yield* Effect.promise(() => Fs.writeFile(dataDir, "a regular file"))

      const error = yield* Effect.flip(Effect.scoped(makeEmbeddedDatabase(dataDir)))

      expect(error.reason).toBe("OpenFailed")
      expect(error.message).toContain(`Failed to open the embedded database in ${dataDir}: `)
      expect(error.cause).toBeDefined()
      expect(yield* exists(`${dataDir}.lock`)).toBe(false)
    }))
})
