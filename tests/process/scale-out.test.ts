import * as Fs from "node:fs/promises"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import {
  consumerLag,
  freshDataDir,
  freshNames,
  ingestEnvironment,
  ReadingsProducer,
  STARTUP_TIMEOUT_MS,
  startDatabaseServer,
  startQuery,
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

const SENSORS = 24

/** Requests sent to both query processes, whose responses must be equal. */
const REQUESTS = [
  "/v1/sensors?page_size=1000",
  "/v1/sensor-data?page_size=500",
  "/v1/sensor-data?page=4&page_size=100&sensor_id=3,5",
  "/v1/sensor-data?from=1700000100&to=1700000400",
  "/v1/sensor-data/avg",
  "/v1/sensor-data/avg-latest"
]

const fetchJson = async (url: string) => {
  const response = await fetch(url)
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe("scale-out", () => {
  it("shares partitions and one database between processes", async () => {
    const names = freshNames("scale")
    const dataDir = await freshDataDir("scale")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))
    const kafka = testKafka("scale-test")
    const admin = kafka.admin()
    await admin.connect()
    cleanups.push(() => admin.disconnect())

    const database = await startDatabaseServer(group, "database", dataDir)
    // The ingest processes create the topics, with KAFKA_TOPIC_PARTITIONS partitions.
    const environment = ingestEnvironment(names, database.url, { KAFKA_TOPIC_PARTITIONS: "6" })
    group.start("ingest-a", ["ingest"], environment)
    const second = group.start("ingest-b", ["ingest"], environment)
    await waitForMembers(admin, names.groupId, 2, STARTUP_TIMEOUT_MS, () => group.tails())
    const metadata = await admin.fetchTopicMetadata({ topics: [names.readingsTopic] })
    expect(metadata.topics[0]?.partitions).toHaveLength(6)

    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    cleanups.push(() => producer.disconnect())
    await producer.send({
      topic: names.sensorsTopic,
      messages: Array.from({ length: SENSORS }, (_, i) => ({
        key: String(i + 1),
        value: JSON.stringify({ id: i + 1, type: "thermo", location: `hall-${i + 1}` })
      }))
    })
    const device = await ReadingsProducer.connect(kafka, names.readingsTopic)
    cleanups.push(() => device.disconnect())
    device.startLoop(50, 20)
    await new Promise((resolve) => setTimeout(resolve, 3_000))

    // One process leaves while readings keep coming, and comes back.
    const stopped = await second.stop()
    expect(stopped.code).toBe(0)
    await waitForMembers(admin, names.groupId, 1, 30_000, () => group.tails())
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    group.start("ingest-b-restarted", ["ingest"], environment)
    await waitForMembers(admin, names.groupId, 2, STARTUP_TIMEOUT_MS, () => group.tails())
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    await device.stopLoop()

    const lag = await waitUntil(
      "the group to commit to the end of the topic",
      () => consumerLag(admin, names.groupId, names.readingsTopic),
      (value) => value === 0,
      60_000,
      () => group.tails()
    )
    const stored = await storedReadings(database.url)

    expect(lag).toBe(0)
    expect(stored?.readings).toBe(device.produced)
    expect(stored?.rows).toBe(2 * device.produced)
    expect(stored?.temperatureSum).toBe(device.temperatureSum)

    // Two query processes on the same database.
    const [left, right] = await Promise.all([
      startQuery(group, "query-a", database.url),
      startQuery(group, "query-b", database.url)
    ])
    for (const path of REQUESTS) {
      const [fromLeft, fromRight] = await Promise.all([fetchJson(left.baseUrl + path), fetchJson(right.baseUrl + path)])
      expect(fromLeft.status, path).toBe(200)
      expect(fromRight.body, path).toEqual(fromLeft.body)
    }
    const sensors = await fetchJson(`${left.baseUrl}/v1/sensors?page_size=1000`)
    expect(sensors.body["sensors"]).toHaveLength(SENSORS)
    const readings = await fetchJson(`${right.baseUrl}/v1/sensor-data?page_size=500`)
    expect(readings.body["data"]).toHaveLength(500)
  }, 240_000)
})
