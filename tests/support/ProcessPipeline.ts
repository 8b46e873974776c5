/**
 * The pipeline as separate processes, for process-level tests: a `database-server`, `ingest` and
 * `query` children configured through environment variables only, a device that produces
 * readings in the original format, and checks through Kafka's admin API and SQL. Nothing here
 * imports the ingest or query code, so the tests check only what an operator can observe.
 */
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Admin, Kafka, logLevel, type Producer } from "kafkajs"
import * as Pg from "pg"
import { inject } from "vitest"
import type { ProcessGroup, SensorLoggerProcess } from "./ChildProcesses.ts"

/**
 * Time allowed for a child to start: the process boot (tsx compiles the sources) and, for the
 * database server, opening PGlite. Measured here at 5 to 15 s on an idle 2-core machine and
 * above 30 s when other work loads it.
 */
export const STARTUP_TIMEOUT_MS = 90_000

/** Bootstrap servers of the test broker, as a `KAFKA_BROKERS` value. */
export const kafkaBrokers = (): string => inject("kafkaBrokers")

/** A kafkajs client of the test broker. */
export const testKafka = (clientId: string): Kafka =>
  new Kafka({ brokers: kafkaBrokers().split(","), clientId, logLevel: logLevel.NOTHING })

let counter = 0

/** Topic and group names that no other test uses. */
export const freshNames = (label: string) => {
  counter += 1
  const prefix = `process.${label}.${process.pid}.${Date.now().toString(36)}.${counter}`
  return { readingsTopic: `${prefix}.ts`, sensorsTopic: `${prefix}.instance`, groupId: `${prefix}.group` }
}
export type PipelineNames = ReturnType<typeof freshNames>

/** A fresh `DATA_DIR` under the system's temporary directory. */
export const freshDataDir = (label: string): Promise<string> =>
  Fs.mkdtemp(Path.join(Os.tmpdir(), `sensor-logger-${label}-`))

/** A started `database-server` child and the URL it logged. */
export interface DatabaseServerProcess {
  readonly process: SensorLoggerProcess
  readonly url: string
  readonly port: number
}

/** Starts `database-server` on `dataDir` and waits for its ready line; `port` 0 picks a free port. */
export const startDatabaseServer = async (
  group: ProcessGroup,
  name: string,
  dataDir: string,
  port = 0
): Promise<DatabaseServerProcess> => {
  const child = group.start(name, ["database-server"], {
    DATA_DIR: dataDir,
    DATABASE_SERVER_HOST: "127.0.0.1",
    DATABASE_SERVER_PORT: String(port)
  })
  const ready = await child.waitForLog(
    (line) => typeof line.annotations["url"] === "string",
    "its postgres:// URL",
    STARTUP_TIMEOUT_MS
  )
  const url = String(ready.annotations["url"])
  return { process: child, url, port: Number(new URL(url).port) }
}

/** Environment of an `ingest` child on `names` and the database at `databaseUrl`. */
export const ingestEnvironment = (names: PipelineNames, databaseUrl: string, extra: Record<string, string> = {}) => ({
  KAFKA_BROKERS: kafkaBrokers(),
  DATABASE_URL: databaseUrl,
  KAFKA_READINGS_TOPIC: names.readingsTopic,
  KAFKA_SENSORS_TOPIC: names.sensorsTopic,
  KAFKA_GROUP_ID: names.groupId,
  INGEST_LINGER_MS: "50",
  // The ingest command may serve metrics and health on INGEST_HTTP_PORT (9464 by default); port 0
  // lets several ingest processes and tests share one host.
  INGEST_HTTP_PORT: "0",
  ...extra
})

/** Waits for the operations server line of an `ingest` child and returns the server's base URL. */
export const ingestOperationsUrl = async (child: SensorLoggerProcess): Promise<string> => {
  const listening = await child.waitForLog(
    (line) => line.message === "Ingest operations endpoints are listening",
    "its operations server address",
    STARTUP_TIMEOUT_MS
  )
  return String(listening.annotations["url"]).replace(/\/$/, "")
}

/** Starts `query` on the database at `databaseUrl` with a free HTTP port and returns its base URL. */
export const startQuery = async (group: ProcessGroup, name: string, databaseUrl: string) => {
  const child = group.start(name, ["query"], { DATABASE_URL: databaseUrl, HTTP_HOST: "127.0.0.1", HTTP_PORT: "0" })
  const listening = await child.waitForLog(
    (line) => /^Listening on http:\/\//.test(line.message),
    "its HTTP address",
    STARTUP_TIMEOUT_MS
  )
  return { process: child, baseUrl: listening.message.replace(/^Listening on /, "").replace(/\/$/, "") }
}

/**
 * Creates `topic` with `partitions` partitions and waits until every partition has a leader. It
 * polls the metadata itself, because on a loaded broker kafkajs's `waitForLeaders` can fail with
 * "This server does not host this topic-partition" before the new topic reaches the metadata.
 */
export const createTopic = async (admin: Admin, topic: string, partitions: number): Promise<void> => {
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: false })
  await waitUntil(
    `leaders of the ${partitions} partitions of ${topic}`,
    () =>
      admin.fetchTopicMetadata({ topics: [topic] }).then(
        (metadata) => metadata.topics[0]?.partitions.filter((partition) => partition.leader >= 0).length ?? 0,
        () => 0
      ),
    (leaders) => leaders === partitions,
    30_000
  )
}

/** First reading time, in Unix seconds. Every reading gets its own second after it, so keys never repeat. */
const FIRST_TS = 1_700_000_000
const SENSORS = 24

/**
 * A device fleet producing readings in the original format: a JSON array per message, keyed by
 * sensor so that each sensor stays on one partition. Reading `i` has `ts` FIRST_TS + i, so every
 * reading has its own (sensor, time) key, and a temperature of `i % 100`.
 */
export class ReadingsProducer {
  /** Readings acknowledged by the broker. */
  produced = 0
  /** Sum of the temperatures acknowledged by the broker. */
  temperatureSum = 0
  readonly #producer: Producer
  readonly #topic: string
  #next = 0
  #loop: Promise<void> | undefined
  #looping = false

  private constructor(producer: Producer, topic: string) {
    this.#producer = producer
    this.#topic = topic
  }

  static async connect(kafka: Kafka, topic: string): Promise<ReadingsProducer> {
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    return new ReadingsProducer(producer, topic)
  }

  /**
   * Produces `messages` messages of `perMessage` readings each, in sends of at most 100 messages,
   * which keeps a request of 100-reading messages under the broker's 1 MiB default limit.
   */
  async send(messages: number, perMessage: number): Promise<void> {
    for (let sent = 0; sent < messages; sent += 100) {
      const batch = []
      let temperatures = 0
      for (let m = 0; m < Math.min(100, messages - sent); m++) {
        const sensorId = 1 + (this.#next % SENSORS)
        const readings = []
        for (let r = 0; r < perMessage; r++) {
          const index = this.#next++
          temperatures += index % 100
          readings.push({ ts: FIRST_TS + index, sensor_id: sensorId, temperature: index % 100, cpu: 1 })
        }
        batch.push({ key: String(sensorId), value: JSON.stringify(readings) })
      }
      await this.#producer.send({ topic: this.#topic, messages: batch, acks: -1 })
      this.produced += batch.length * perMessage
      this.temperatureSum += temperatures
    }
  }

  /** Produces one message of `perMessage` readings every `intervalMs` until `stopLoop`. */
  startLoop(intervalMs: number, perMessage: number): void {
    this.#looping = true
    this.#loop = (async () => {
      while (this.#looping) {
        await this.send(1, perMessage)
        await new Promise((resolve) => setTimeout(resolve, intervalMs))
      }
    })()
  }

  /** Stops the loop after its current send. */
  async stopLoop(): Promise<void> {
    this.#looping = false
    await this.#loop
  }

  async disconnect(): Promise<void> {
    this.#looping = false
    await this.#loop?.catch(() => undefined)
    await this.#producer.disconnect()
  }
}

/** What `sensor_data` contains: rows (one per metric value), distinct (sensor, time) keys and the temperature sum. */
export interface StoredReadings {
  readonly rows: number
  readonly readings: number
  readonly temperatureSum: number
}

/** Reads {@link StoredReadings} through SQL, or returns undefined while the database or its schema is not there. */
export const storedReadings = async (databaseUrl: string): Promise<StoredReadings | undefined> => {
  const client = new Pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 })
  client.on("error", () => undefined)
  try {
    await client.connect()
    const result = await client.query<{ rows: number; readings: number; temperature: number | null }>(`
      select count(*)::int as rows,
             count(distinct (d.sensor_id, d.time))::int as readings,
             sum(d.value) filter (where m.name = 'temperature') as temperature
      from sensor_data d join metrics m on m.id = d.metric_id`)
    const row = result.rows[0]!
    return { rows: row.rows, readings: row.readings, temperatureSum: row.temperature ?? 0 }
  } catch {
    return undefined
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Rows in `sensor_data`, or undefined while the database or its schema is not there. It is a
 * cheaper probe than {@link storedReadings}, which counts distinct keys.
 */
export const storedRows = async (databaseUrl: string): Promise<number | undefined> => {
  const client = new Pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 })
  client.on("error", () => undefined)
  try {
    await client.connect()
    const result = await client.query<{ rows: number }>("select count(*)::int as rows from sensor_data")
    return result.rows[0]!.rows
  } catch {
    return undefined
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Records between the group's committed offsets and the end of `topic`, over all partitions. */
export const consumerLag = async (admin: Admin, groupId: string, topic: string): Promise<number> => {
  const ends = await admin.fetchTopicOffsets(topic)
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
  let lag = 0
  for (const end of ends) {
    const offset = committed?.partitions.find((partition) => partition.partition === end.partition)?.offset ?? "-1"
    // -1: nothing committed yet, so everything from the start of the partition is outstanding.
    const start = Number(offset) < 0 ? Number(end.low) : Number(offset)
    lag += Number(end.high) - start
  }
  return lag
}

/** Members of the consumer group once it is stable, or 0 while it rebalances or is empty. */
export const stableMembers = async (admin: Admin, groupId: string): Promise<number> => {
  const { groups } = await admin.describeGroups([groupId])
  const group = groups[0]
  return group?.state === "Stable" ? group.members.length : 0
}

/** Calls `probe` every 250 ms until `done` accepts its value and returns that value, or fails after `timeoutMs`. */
export const waitUntil = async <A>(
  description: string,
  probe: () => Promise<A>,
  done: (value: A) => boolean,
  timeoutMs: number,
  context: () => string = () => ""
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: A | undefined
  for (;;) {
    last = await probe()
    if (done(last)) return last
    if (Date.now() > deadline) {
      const lastValue = JSON.stringify(last)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}; last value ${lastValue}\n${context()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

/** Waits until the consumer group is stable with `count` members. */
export const waitForMembers = (
  admin: Admin,
  groupId: string,
  count: number,
  timeoutMs: number,
  context: () => string
): Promise<number> =>
  waitUntil(
    `${count} stable members in group ${groupId}`,
    () => stableMembers(admin, groupId),
    (members) => members === count,
    timeoutMs,
    context
  )
