import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Path from "node:path"
import * as Pg from "pg"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import { freshDataDir, STARTUP_TIMEOUT_MS, startDatabaseServer } from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

const temporaryDataDir = async () => {
  const dataDir = await freshDataDir("server")
  cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
  return dataDir
}

describe("database-server command", () => {
  it("rejects an invalid port", async () => {
    const dataDir = await temporaryDataDir()
    const child = group.start("database", ["database-server"], { DATA_DIR: dataDir, DATABASE_SERVER_PORT: "70000" })
    const exit = await child.exited

    expect(exit.code).not.toBe(0)
    expect(child.lines.map((line) => `${line.message} ${line.cause}`).join("\n")).toMatch(/DATABASE_SERVER_PORT/)
  }, STARTUP_TIMEOUT_MS)

  it("names the port that is in use", async () => {
    const dataDir = await temporaryDataDir()
    const blocker = Net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)))
    const port = (blocker.address() as Net.AddressInfo).port
    const child = group.start("database", ["database-server"], { DATA_DIR: dataDir, DATABASE_SERVER_PORT: String(port) })
    const exit = await child.exited

    expect(exit.code).not.toBe(0)
    const output = child.lines.map((line) => `${line.message} ${line.cause}`).join("\n")
    expect(output).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`))
    expect(output).toMatch(/the port is in use/)
    // The database it had opened was closed again, so its lock file is gone.
    const lockExists = await Fs.access(`${Path.join(dataDir, "timescaledb")}.lock`).then(() => true, () => false)
    expect(lockExists).toBe(false)
  }, 2 * STARTUP_TIMEOUT_MS)

  it("stops cleanly on SIGINT", async () => {
    const dataDir = await temporaryDataDir()
    const database = await startDatabaseServer(group, "database", dataDir)
    const client = new Pg.Client({ connectionString: database.url })
    await client.connect()
    const shutdownErrors: Array<string> = []
    client.on("error", (error) => shutdownErrors.push(error.message))
    expect((await client.query("select 1 as one")).rows[0].one).toBe(1)
    database.process.kill("SIGINT")
    const exit = await database.process.exited

    expect(exit.code).toBe(0)
    expect(shutdownErrors[0]).toBe("terminating connection due to administrator command")
    expect(database.process.lines.some((line) => line.message === "Embedded database closed")).toBe(true)
    const lockExists = await Fs.access(`${Path.join(dataDir, "timescaledb")}.lock`).then(() => true, () => false)
    expect(lockExists).toBe(false)
  }, 2 * STARTUP_TIMEOUT_MS)
})
