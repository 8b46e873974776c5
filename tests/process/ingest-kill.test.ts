import * as Fs from "node:fs/promises"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import {
  consumerLag,
  createTopic,
  freshDataDir,
  freshNames,
  ingestEnvironment,
  ReadingsProducer,
  STARTUP_TIMEOUT_MS,
  startDatabaseServer,
  storedReadings,
  storedRows,
  testKafka,
  waitUntil
} from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

describe("ingest killed mid-batch", () => {
  // The killed consumer stays in the group until its session timeout expires (10 s here, set by
  // INGEST_SESSION_TIMEOUT_MS), so the restarted process gets its partitions only then.
  it("loses nothing and writes nothing twice", async () => {
    const names = freshNames("kill")
    const dataDir = await freshDataDir("kill")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
    const kafka = testKafka("kill-test")
    const admin = kafka.admin()
    await admin.connect()
    cleanups.push(() => admin.disconnect())
    await createTopic(admin, names.readingsTopic, 3)
    const device = await ReadingsProducer.connect(kafka, names.readingsTopic)
    cleanups.push(() => device.disconnect())
    // The backlog: 600 messages of 100 readings, 120,000 rows, which the ingest job writes in
    // statements of at most 20,000 rows (INGEST_BATCH_MAX_ROWS) before it commits a batch's offsets.
    await device.send(600, 100)

    const database = await startDatabaseServer(group, "database", dataDir)
    const environment = ingestEnvironment(names, database.url, { INGEST_SESSION_TIMEOUT_MS: "10000" })
    const first = group.start("ingest", ["ingest"], environment)
    // Killed as soon as the first statement's rows are stored, while the group still lags behind.
    const rowsAtKill = await waitUntil(
      "the first rows of the backlog",
      () => storedRows(database.url),
      (rows) => rows !== undefined && rows > 0,
      STARTUP_TIMEOUT_MS,
      () => group.tails()
    )
    first.kill("SIGKILL")
    const killed = await first.exited
    expect(killed.signal).toBe("SIGKILL")
    const lagAtKill = await consumerLag(admin, names.groupId, names.readingsTopic)
    expect(rowsAtKill!).toBeLessThan(2 * device.produced)
    expect(lagAtKill).toBeGreaterThan(0)

    group.start("ingest-restarted", ["ingest"], environment)
    const lag = await waitUntil(
      "the group to commit to the end of the topic",
      () => consumerLag(admin, names.groupId, names.readingsTopic),
      (value) => value === 0,
      120_000,
      () => group.tails()
    )
    const stored = await storedReadings(database.url)

    expect(lag).toBe(0)
    expect(stored?.readings).toBe(device.produced)
    expect(stored?.rows).toBe(2 * device.produced)
    expect(stored?.temperatureSum).toBe(device.temperatureSum)
  }, 240_000)
})
