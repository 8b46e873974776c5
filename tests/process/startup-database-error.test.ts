import * as Fs from "node:fs/promises"
import * as Pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import { freshDataDir, freshNames, ingestEnvironment, STARTUP_TIMEOUT_MS, startDatabaseServer } from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

describe("database error at startup", () => {
  it("logs the database's message and exits 1", async () => {
    const names = freshNames("startup-error")
    const dataDir = await freshDataDir("startup-error")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
    const database = await startDatabaseServer(group, "database", dataDir)

    // A migrations table of another shape makes the migration run fail with 42703 (undefined_column).
    const client = new Pg.Client({ connectionString: database.url, connectionTimeoutMillis: 5_000 })
    await client.connect()
    await client.query("create table sensor_logger_migrations (id text)")
    await client.end()

    const ingest = group.start("ingest", ["ingest"], ingestEnvironment(names, database.url))
    const exit = await ingest.exited
    const errors = ingest.lines.filter((line) => line.level === "ERROR")

    expect(exit.code).toBe(1)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toMatch(/^Stopped by a database error: Failed to execute statement: column "migration_id" does not exist/)
    expect(errors[0]!.annotations["sqlState"]).toBe("42703")
  }, STARTUP_TIMEOUT_MS)
})
