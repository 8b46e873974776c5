import * as Fs from "node:fs/promises"
import * as Pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import {
  freshDataDir,
  freshNames,
  ingestEnvironment,
  STARTUP_TIMEOUT_MS,
  startDatabaseServer
} from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

/** Rows of the migrations table, read through SQL. */
const appliedMigrations = async (databaseUrl: string) => {
  const client = new Pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 })
  await client.connect()
  try {
    const result = await client.query<{ migrationId: number; name: string }>(
      `select migration_id as "migrationId", name from sensor_logger_migrations order by migration_id`
    )
    return result.rows
  } finally {
    await client.end()
  }
}

describe("concurrent migrations", () => {
  it("starts two ingest processes on an empty database", async () => {
    const names = freshNames("migrations")
    const dataDir = await freshDataDir("migrations")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
    const database = await startDatabaseServer(group, "database", dataDir)

    // NOTE: the two processes start together, but their boot times differ by up to seconds, so
    // their migration runs need not overlap and this test does not reliably catch a missing
    // migration lock. tests/ingest/migrations.test.ts overlaps two runs within one process.
    const environment = ingestEnvironment(names, database.url)
    const ingests = [group.start("ingest-a", ["ingest"], environment), group.start("ingest-b", ["ingest"], environment)]
    await Promise.all(
      ingests.map((ingest) => ingest.waitForLog((line) => line.message === "Ingest job started", "Ingest job started", STARTUP_TIMEOUT_MS))
    )
    const applied = ingests.map((ingest) => ingest.lines.filter((line) => line.message === "Applied migration").length)
    const migrations = await appliedMigrations(database.url)

    expect(migrations).toEqual([
      { migrationId: 1, name: "create_tables" },
      { migrationId: 2, name: "create_read_models" },
      { migrationId: 3, name: "index_read_model_series" }
    ])
    // One of the two applied every migration, the other none.
    expect([...applied].sort((a, b) => a - b)).toEqual([0, migrations.length])
    for (const ingest of ingests) {
      expect(ingest.running).toBe(true)
      expect(ingest.lines.filter((line) => line.level === "ERROR" || line.level === "FATAL")).toEqual([])
    }
  }, 2 * STARTUP_TIMEOUT_MS)
})
