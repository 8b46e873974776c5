import * as Fs from "node:fs/promises"
import type { Admin } from "kafkajs"
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
  testKafka,
  waitForMembers,
  waitUntil
} from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

describe("database outage", () => {
  it("stores every reading once after the database returns", async () => {
    const names = freshNames("outage")
    const dataDir = await freshDataDir("outage")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
    const kafka = testKafka("outage-test")
    const admin: Admin = kafka.admin()
    await admin.connect()
    cleanups.push(() => admin.disconnect())
    await createTopic(admin, names.readingsTopic, 3)
    const device = await ReadingsProducer.connect(kafka, names.readingsTopic)
    cleanups.push(() => device.disconnect())

    const database = await startDatabaseServer(group, "database", dataDir)
    const ingest = group.start("ingest", ["ingest"], ingestEnvironment(names, database.url))
    await waitForMembers(admin, names.groupId, 1, STARTUP_TIMEOUT_MS, () => group.tails())

    await device.send(100, 10)
    await waitUntil(
      "the first readings to be stored",
      () => storedReadings(database.url),
      (stored) => stored?.readings === device.produced,
      60_000,
      () => group.tails()
    )

    // Readings keep arriving while the database is down and after it returns.
    device.startLoop(100, 10)
    const stopped = await database.process.stop()
    expect(stopped.code).toBe(0)
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const producedDuringOutage = device.produced
    expect(ingest.running).toBe(true)
    const restarted = await startDatabaseServer(group, "database-restarted", dataDir, database.port)
    expect(restarted.url).toBe(database.url)
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    await device.stopLoop()
    expect(device.produced).toBeGreaterThan(producedDuringOutage)

    const stored = await waitUntil(
      "every reading to be stored",
      () => storedReadings(restarted.url),
      (value) => value !== undefined && value.readings >= device.produced,
      90_000,
      () => group.tails()
    )
    const lag = await waitUntil(
      "the group to commit to the end of the topic",
      () => consumerLag(admin, names.groupId, names.readingsTopic),
      (value) => value === 0,
      30_000,
      () => group.tails()
    )

    expect(stored!.readings).toBe(device.produced)
    expect(stored!.rows).toBe(2 * device.produced)
    expect(stored!.temperatureSum).toBe(device.temperatureSum)
    expect(lag).toBe(0)
    expect(ingest.running).toBe(true)
  }, 240_000)
})
