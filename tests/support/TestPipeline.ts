import { FetchHttpClient, HttpApiClient, HttpServer } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { ConfigProvider, Duration, Effect, Layer } from "effect"
import { Kafka, logLevel, type Message } from "kafkajs"
import { inject } from "vitest"
import { IngestLive, QueryLive } from "../../src/cli/Layers.ts"
import { IngestJob } from "../../src/ingest/IngestJob.ts"
import { IngestStats, type IngestTotals } from "../../src/ingest/IngestStats.ts"
import { QueryApi } from "../../src/query/Api.ts"
import { Database, type DatabaseInfo } from "../../src/runtime/database/Database.ts"
import { KafkaClient } from "../../src/runtime/kafka/KafkaClient.ts"
import type { PartitionStatus } from "../../src/runtime/kafka/PartitionConsumer.ts"

/** Bootstrap servers of the broker the global setup started (or `KAFKA_BROKERS`). */
export const testBrokers = (): ReadonlyArray<string> => inject("kafkaBrokers").split(",")

let counter = 0

/** Topic and group names no other test uses, so tests share the broker without seeing each other's records. */
export const uniqueNames = (label: string) => {
  counter += 1
  const prefix = `test.${label}.${process.pid}.${Date.now().toString(36)}.${counter}`
  return { readingsTopic: `${prefix}.ts`, sensorsTopic: `${prefix}.instance`, groupId: `${prefix}.group` }
}
export type TestNames = ReturnType<typeof uniqueNames>

/** Settings of a pipeline under test: its own topics and group, a free HTTP port, short linger. */
export const testConfigProvider = (names: TestNames, extra: Record<string, string> = {}) =>
  ConfigProvider.fromMap(
    new Map(
      Object.entries({
        KAFKA_READINGS_TOPIC: names.readingsTopic,
        KAFKA_SENSORS_TOPIC: names.sensorsTopic,
        KAFKA_GROUP_ID: names.groupId,
        KAFKA_TOPIC_PARTITIONS: "2",
        INGEST_LINGER_MS: "50",
        HTTP_HOST: "127.0.0.1",
        HTTP_PORT: "0",
        INGEST_HTTP_PORT: "0",
        LOG_LEVEL: "warning",
        ...extra
      })
    )
  )

/** The Kafka client of the test broker. */
export const TestKafka = Layer.suspend(() => KafkaClient.layer({ brokers: testBrokers(), clientId: "sensor-logger-test" }))

/** A fresh in-memory embedded TimescaleDB. */
export const TestDatabase = Layer.suspend(() => Database.layerEmbedded("memory://"))

/** Ingest job and query service over the given database and the test broker, configured for `names`. */
export const pipelineLayer = <E, R>(
  names: TestNames,
  database: Layer.Layer<SqlClient.SqlClient | DatabaseInfo, E, R>,
  extra?: Record<string, string>
) =>
  Layer.merge(IngestLive, QueryLive).pipe(
    Layer.provideMerge(Layer.merge(TestKafka, database)),
    Layer.provide(Layer.setConfigProvider(testConfigProvider(names, extra)))
  )

/** Base URL of the query server under test. */
export const serverUrl = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("the query server is not on TCP")
  return `http://127.0.0.1:${address.port}`
})

/** An HTTP client derived from the API definition, pointed at the server under test. */
export const queryClient = Effect.flatMap(serverUrl, (baseUrl) => HttpApiClient.make(QueryApi, { baseUrl })).pipe(
  Effect.provide(FetchHttpClient.layer)
)

/** A plain GET of `path` on the query server, for requests the derived client would refuse to encode. */
export const getRaw = (path: string) =>
  Effect.flatMap(serverUrl, (baseUrl) =>
    Effect.promise(async () => {
      const response = await fetch(`${baseUrl}${path}`)
      return { status: response.status, body: (await response.json()) as Record<string, unknown> }
    }))

/**
 * Produces raw records with a plain kafkajs producer, as a device would, outside the pipeline's
 * layers. The topic is created first (2 partitions) when missing, because producing to a topic
 * that auto-creation has not finished fails with "does not host this topic-partition".
 */
export const produce = (topic: string, messages: ReadonlyArray<Message>) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const kafka = testKafka("test-device")
      const admin = kafka.admin()
      await admin.connect()
      if (!(await admin.listTopics()).includes(topic)) {
        await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
      }
      await admin.disconnect()
      const producer = kafka.producer({ allowAutoTopicCreation: false })
      await producer.connect()
      return producer
    }),
    (producer) => Effect.promise(() => producer.send({ topic, messages: [...messages], acks: -1 })),
    (producer) => Effect.promise(() => producer.disconnect())
  )

/** A plain kafkajs client of the test broker that logs nothing, for test-side admin calls and readers. */
const testKafka = (clientId: string) => new Kafka({ brokers: [...testBrokers()], clientId, logLevel: logLevel.NOTHING })

/** A record of a topic as the tests read it: value and headers as text. */
export interface ReadRecord {
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: string
  readonly headers: Record<string, string>
}

let readerCounter = 0

/**
 * Reads the records of `topic` from the beginning with a fresh consumer group, until `count`
 * have arrived or `timeoutMillis` passed, and returns them in arrival order.
 */
export const consumeAll = (topic: string, count: number, timeoutMillis = 30_000) =>
  Effect.promise(async () => {
    readerCounter += 1
    const consumer = testKafka("test-reader").consumer({ groupId: `${topic}.reader.${readerCounter}` })
    const records: Array<ReadRecord> = []
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const done = new Promise<void>((resolve) => {
      if (count === 0) resolve()
      void consumer.run({
        eachMessage: async ({ message, partition }) => {
          const headers = Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)])
          )
          records.push({ partition, offset: message.offset, key: message.key?.toString() ?? null, value: message.value?.toString() ?? "", headers })
          if (records.length >= count) resolve()
        }
      })
    })
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, timeoutMillis))])
    await consumer.disconnect()
    return records
  })

/** Runs `use` with a connected kafkajs admin client of the test broker. */
const withAdmin = <A>(use: (admin: ReturnType<Kafka["admin"]>) => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const admin = testKafka("test-admin").admin()
      await admin.connect()
      return admin
    }),
    (admin) => Effect.promise(() => use(admin)),
    (admin) => Effect.promise(() => admin.disconnect())
  )

/** The offset `groupId` has committed for each partition of `topic`, by partition; -1 where it has none. */
export const committedOffsets = (groupId: string, topic: string) =>
  withAdmin(async (admin) => {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return Object.fromEntries((offsets?.partitions ?? []).map(({ offset, partition }) => [partition, Number(offset)]))
  })

/** The offset after the last record of each partition of `topic` (its high watermark), by partition. */
export const endOffsets = (topic: string) =>
  withAdmin(async (admin) => {
    const offsets = await admin.fetchTopicOffsets(topic)
    return Object.fromEntries(offsets.map(({ high, partition }) => [partition, Number(high)]))
  })

/** Records of `topic` that `groupId` has not committed, summed over its partitions. */
export const consumerLag = (groupId: string, topic: string) =>
  Effect.gen(function*() {
    const ends = yield* endOffsets(topic)
    const committed = yield* committedOffsets(groupId, topic)
    let lag = 0
    for (const [partition, end] of Object.entries(ends)) {
      const offset = committed[Number(partition)] ?? -1
      lag += end - Math.max(offset, 0)
    }
    return lag
  })

/** Polls until `groupId` has committed every record of `topics`, failing after `timeout`. */
export const awaitNoLag = (groupId: string, topics: ReadonlyArray<string>, timeout: Duration.DurationInput = "60 seconds") =>
  pollUntil(
    Effect.forEach(topics, (topic) => consumerLag(groupId, topic)).pipe(Effect.map((lags) => lags.reduce((sum, lag) => sum + lag, 0))),
    (lag) => lag === 0
  ).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`${groupId} still had uncommitted records of ${topics.join(", ")} after ${Duration.format(timeout)}`)
    })
  )

/** Runs `effect` every 50 ms until its value satisfies `done`, and returns that value. */
export const pollUntil = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (value: A) => boolean) =>
  Effect.repeat(Effect.delay(effect, "50 millis"), { until: done })

/** Polls the ingest job's totals until `records` Kafka records are handled, failing after `timeout`. */
export const awaitCommittedRecords = (records: number, timeout: Duration.DurationInput = "60 seconds") =>
  Effect.gen(function*() {
    const stats = yield* IngestStats
    return yield* pollUntil(stats.totals, (totals) => totals.records >= records).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Error(`the ingest job did not commit ${records} records within ${Duration.format(timeout)}`)
      })
    )
  })

/** Polls the ingest job's totals until `done` holds for them, failing after `timeout`. */
export const awaitTotals = (done: (totals: IngestTotals) => boolean, label: string, timeout: Duration.DurationInput = "60 seconds") =>
  Effect.gen(function*() {
    const stats = yield* IngestStats
    return yield* pollUntil(stats.totals, done).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Error(`the ingest job did not reach ${label} within ${Duration.format(timeout)}`)
      })
    )
  })

/** Polls the partitions of the ingest job until `done` holds for them, failing after `timeout`. */
export const awaitPartitions = (
  done: (partitions: ReadonlyArray<PartitionStatus>) => boolean,
  label: string,
  timeout: Duration.DurationInput = "60 seconds"
) =>
  Effect.gen(function*() {
    const job = yield* IngestJob
    return yield* pollUntil(job.partitions, done).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Error(`the ingest job's partitions did not reach ${label} within ${Duration.format(timeout)}`)
      })
    )
  })

/** Polls `sensor_data` until it contains `expected` rows (metric values), failing after `timeout`. */
export const awaitRows = (expected: number, timeout: Duration.DurationInput = "60 seconds") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const count = sql<{ count: number }>`select count(*)::int8 as count from sensor_data`.pipe(
      Effect.map((rows) => rows[0]?.count ?? 0)
    )
    return yield* pollUntil(count, (rows) => rows >= expected).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new Error(`sensor_data did not reach ${expected} rows within ${Duration.format(timeout)}`)
      })
    )
  })
