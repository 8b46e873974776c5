import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import { type Consumer, Kafka, logLevel, Partitioners } from "kafkajs"
import { afterEach, describe, expect, inject, it, onTestFinished } from "vitest"
import {
  isProcessAlive,
  LocalKafka,
  type LocalKafkaError,
  renderServerProperties,
  resolveClasspath,
  startLocalKafka
} from "../../infra/kafka/LocalKafka.ts"

const localKafkaModule = pathToFileURL(path.resolve("infra/kafka/LocalKafka.ts")).href

const temporaryDirs: Array<string> = []
const makeDataDir = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-kafka-test-"))
  temporaryDirs.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

const uniqueName = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`

const client = (brokers: ReadonlyArray<string>): Kafka =>
  new Kafka({ clientId: "local-kafka-test", brokers: [...brokers], logLevel: logLevel.NOTHING })

const waitFor = async (condition: () => boolean, timeoutMs: number, what: string): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Resolves with the connect error code, or "connected" if something accepts on the port. */
const probePort = (port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resolve("connected")
    })
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message))
  })

const createTopic = async (kafka: Kafka, topic: string): Promise<void> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(true)
  } finally {
    await admin.disconnect()
  }
}

const produce = async (kafka: Kafka, topic: string, values: ReadonlyArray<string>): Promise<void> => {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await producer.send({ topic, messages: values.map((value) => ({ key: "sensor-1", value })) })
  } finally {
    await producer.disconnect()
  }
}

/**
 * Consumes with a consumer group and no auto-commit until `count` values arrived, committing
 * the next offset after each batch, and returns the values in order.
 */
const consumeAndCommit = async (kafka: Kafka, topic: string, groupId: string, count: number): Promise<Array<string>> => {
  const consumer: Consumer = kafka.consumer({ groupId })
  const values: Array<string> = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) values.push(message.value?.toString() ?? "")
        const next = (BigInt(batch.lastOffset()) + 1n).toString()
        await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
      }
    })
    await waitFor(() => values.length >= count, 60_000, `${count} messages on ${topic}`)
  } finally {
    await consumer.disconnect()
  }
  return values
}

const committedOffset = async (kafka: Kafka, groupId: string, topic: string): Promise<string | undefined> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    return offsets.find((entry) => entry.topic === topic)?.partitions.find((entry) => entry.partition === 0)?.offset
  } finally {
    await admin.disconnect()
  }
}

const listTopics = async (kafka: Kafka): Promise<Array<string>> => {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await admin.listTopics()
  } finally {
    await admin.disconnect()
  }
}

/** Runs a Node script that imports LocalKafka.ts and starts a broker on `dataDir`, and returns the child and the broker pid it prints. */
const startBrokerInChild = async (dataDir: string, afterStart: string) => {
  const script = [
    `import { startLocalKafka } from ${JSON.stringify(localKafkaModule)}`,
    `const broker = await startLocalKafka({ dataDir: ${JSON.stringify(dataDir)} })`,
    `process.stdout.write(JSON.stringify({ pid: broker.pid }) + "\\n")`,
    afterStart
  ].join("\n")
  const child = spawn(process.execPath, ["--import", "tsx/esm", "--input-type=module", "-e", script], {
    cwd: process.cwd(),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  let childDone = false
  void exited.then(() => (childDone = true))
  onTestFinished(() => {
    child.kill("SIGKILL")
  })

  await waitFor(() => stdout.includes("\n") || childDone, 90_000, "the child to print the broker pid")
  if (!stdout.includes("\n")) throw new Error(`child exited before starting a broker:\n${stderr}`)
  const { pid } = JSON.parse(stdout.split("\n")[0] ?? "") as { pid: number }
  onTestFinished(() => {
    if (isProcessAlive(pid)) process.kill(pid, "SIGKILL")
  })
  return { child, exited, brokerPid: pid }
}

describe("shared test broker", () => {
  it("consumes with manual commits", async () => {
    const kafka = client(inject("kafkaBrokers").split(","))
    const topic = uniqueName("local-kafka-commit")
    const groupId = uniqueName("local-kafka-group")
    await createTopic(kafka, topic)

    const first = ["m0", "m1", "m2", "m3", "m4"]
    await produce(kafka, topic, first)
    expect(await consumeAndCommit(kafka, topic, groupId, first.length)).toEqual(first)
    expect(await committedOffset(kafka, groupId, topic)).toBe("5")

    // A new member of the same group must resume at the committed offset, not at the beginning.
    await produce(kafka, topic, ["m5", "m6"])
    expect(await consumeAndCommit(kafka, topic, groupId, 2)).toEqual(["m5", "m6"])
    expect(await committedOffset(kafka, groupId, topic)).toBe("7")
  })
})

describe("startLocalKafka", () => {
  it("starts, locks and stops a broker", async () => {
    const dataDir = makeDataDir()
    const broker = await startLocalKafka({ dataDir })
    onTestFinished(() => broker.stop())

    expect(broker.port).toBeGreaterThan(0)
    expect(broker.brokers).toEqual([`127.0.0.1:${broker.port}`])
    expect(isProcessAlive(broker.pid)).toBe(true)
    expect(fs.readFileSync(path.join(dataDir, "cluster-id"), "utf8").trim()).toBe(broker.clusterId)

    // No retries: the broker must serve requests as soon as the start resolves.
    const impatient = new Kafka({ brokers: [...broker.brokers], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
    const admin = impatient.admin({ retry: { retries: 0 } })
    await admin.connect()
    const cluster = await admin.describeCluster()
    await admin.disconnect()
    expect(cluster.clusterId).toBe(broker.clusterId)
    expect(cluster.brokers.map((entry) => entry.port)).toEqual([broker.port])

    const lock = JSON.parse(fs.readFileSync(path.join(dataDir, "broker.lock"), "utf8")) as { brokerPid: number; ownerPid: number }
    expect(lock.brokerPid).toBe(broker.pid)
    expect(lock.ownerPid).toBe(process.pid)
    await expect(startLocalKafka({ dataDir })).rejects.toMatchObject({ _tag: "LocalKafkaError", reason: "DataDirLocked" })
    expect(isProcessAlive(broker.pid)).toBe(true)

    await broker.stop()
    expect(await broker.exited).toMatchObject({ signal: null })
    expect(isProcessAlive(broker.pid)).toBe(false)
    expect(await probePort(broker.port)).toBe("ECONNREFUSED")
    expect(await probePort(broker.controllerPort)).toBe("ECONNREFUSED")
    expect(fs.existsSync(path.join(dataDir, "broker.lock"))).toBe(false)
    expect(fs.readFileSync(path.join(dataDir, "broker.log"), "utf8")).toContain("Kafka Server started")
  })

  it("keeps topics across a restart", async () => {
    const dataDir = makeDataDir()
    const topic = uniqueName("local-kafka-kept")
    const first = await startLocalKafka({ dataDir })
    onTestFinished(() => first.stop())
    await createTopic(client(first.brokers), topic)
    await produce(client(first.brokers), topic, ["before-restart"])
    await first.stop()

    // The second start goes through the Effect API, so the scope's release is checked too.
    const second = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const broker = yield* LocalKafka.scoped({ dataDir })
          const kafka = client(broker.brokers)
          const topics = yield* Effect.promise(() => listTopics(kafka))
          const values = yield* Effect.promise(() => consumeAndCommit(kafka, topic, uniqueName("local-kafka-restart"), 1))
          return { pid: broker.pid, clusterId: broker.clusterId, topics, values, aliveInScope: isProcessAlive(broker.pid) }
        })
      )
    )
    expect(second.clusterId).toBe(first.clusterId)
    expect(second.topics).toContain(topic)
    expect(second.values).toEqual(["before-restart"])
    expect(second.aliveInScope).toBe(true)
    expect(isProcessAlive(second.pid)).toBe(false)
  })

  it("kills the broker when Node exits", async () => {
    const dataDir = makeDataDir()
    const { exited, brokerPid } = await startBrokerInChild(dataDir, "process.exit(0)")
    expect(await exited).toBe(0)
    await waitFor(() => !isProcessAlive(brokerPid), 5_000, `broker pid ${brokerPid} to exit`)
    expect(fs.existsSync(path.join(dataDir, "broker.lock"))).toBe(false)
  })

  it("stops a broker orphaned by SIGKILL", async () => {
    const dataDir = makeDataDir()
    const { child, exited, brokerPid } = await startBrokerInChild(dataDir, "setInterval(() => {}, 1000)")
    child.kill("SIGKILL")
    await exited
    // SIGKILL skips the 'exit' listener, so the broker outlives its owner.
    expect(isProcessAlive(brokerPid)).toBe(true)

    const broker = await startLocalKafka({ dataDir })
    onTestFinished(() => broker.stop())
    expect(isProcessAlive(brokerPid)).toBe(false)
    expect(broker.pid).not.toBe(brokerPid)
    expect(fs.readFileSync(path.join(dataDir, "broker.log"), "utf8")).toContain(`stopping orphaned broker pid ${brokerPid}`)
  })
})

describe("errors", () => {
  it("reports a requested port in use", async () => {
    const server = net.createServer()
    await new Promise<void>((resolve) => server.listen({ port: 0, host: "127.0.0.1" }, () => resolve()))
    onTestFinished(() => {
      server.close()
    })
    const busyPort = (server.address() as net.AddressInfo).port
    const dataDir = makeDataDir()

    const error = await startLocalKafka({ dataDir, port: busyPort }).catch((cause: LocalKafkaError) => cause)
    expect(error).toMatchObject({ _tag: "LocalKafkaError", reason: "PortInUse", port: busyPort })
    expect((error as LocalKafkaError).message).toContain(`port ${busyPort} is already in use`)
    expect(fs.existsSync(path.join(dataDir, "broker.lock"))).toBe(false)
  })

  it("resolveClasspath lists existing jars", async () => {
    const jars = await resolveClasspath()
    expect(jars.some((jar) => path.basename(jar) === "kafka_2.13-4.1.1.jar")).toBe(true)
    expect(jars.filter((jar) => !fs.existsSync(jar))).toEqual([])
  })

  it("reports a missing mvn", async () => {
    const cacheFile = path.join(makeDataDir(), "classpath.txt")
    const error = await resolveClasspath({ mvn: "/nonexistent/mvn", cacheFile }).catch((cause: LocalKafkaError) => cause)
    expect(error).toMatchObject({ _tag: "LocalKafkaError", reason: "MavenNotFound" })
    expect((error as LocalKafkaError).message).toContain("Install Apache Maven")
  })

  it("reports a missing java and unlocks", async () => {
    const dataDir = makeDataDir()
    const error = await startLocalKafka({ dataDir, java: "/nonexistent/java" }).catch((cause: LocalKafkaError) => cause)
    expect(error).toMatchObject({ _tag: "LocalKafkaError", reason: "JavaNotFound" })
    expect((error as LocalKafkaError).message).toContain("Install a Java 17 or newer runtime")
    expect(fs.existsSync(path.join(dataDir, "broker.lock"))).toBe(false)
  })

  it("rejects invalid ports", async () => {
    await expect(startLocalKafka({ dataDir: makeDataDir(), port: 70_000 })).rejects.toMatchObject({ reason: "InvalidOptions" })
    await expect(startLocalKafka({ dataDir: makeDataDir(), port: 9, controllerPort: 9 })).rejects.toMatchObject({
      reason: "InvalidOptions"
    })
  })

  it("renderServerProperties applies overrides", () => {
    const text = renderServerProperties({
      port: 1234,
      controllerPort: 1235,
      logDirs: "/data/kafka-logs",
      overrides: { "num.partitions": "3", "log.retention.ms": "1000" }
    })
    const lines = text.split("\n")
    expect(lines).toContain("listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235")
    expect(lines).toContain("num.partitions=3")
    expect(lines).not.toContain("num.partitions=1")
    expect(lines).toContain("log.retention.ms=1000")
    expect(lines).toContain("log.dirs=/data/kafka-logs")
  })
})
