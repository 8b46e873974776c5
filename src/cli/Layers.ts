import { Config, Effect, Layer, Option } from "effect"
import { LocalKafka } from "../../infra/kafka/LocalKafka.ts"
import { ingestConfig } from "../ingest/IngestConfig.ts"
import { IngestJob } from "../ingest/IngestJob.ts"
import { IngestStats } from "../ingest/IngestStats.ts"
import { SensorDataWriter } from "../ingest/SensorDataWriter.ts"
import { StorageMaintenance } from "../ingest/StorageMaintenance.ts"
import { QueryServer } from "../query/QueryServer.ts"
import { Database } from "../runtime/database/Database.ts"
import { httpServerLayerConfig } from "../runtime/http/HttpServerLayer.ts"
import { KafkaAdmin } from "../runtime/kafka/KafkaAdmin.ts"
import { brokersConfig, KafkaClient } from "../runtime/kafka/KafkaClient.ts"
import { KafkaProducer } from "../runtime/kafka/KafkaProducer.ts"

const clientId = Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("sensor-logger"))

/** The Kafka client for `KAFKA_BROKERS`, which must be set. */
export const KafkaFromConfig = KafkaClient.layerConfig

/**
 * The Kafka client for `KAFKA_BROKERS`, or, when it is not set, for a local single-node broker
 * started in `${DATA_DIR}/kafka` on `KAFKA_LOCAL_PORT` (default 9092) and stopped with the layer.
 */
export const KafkaOrLocalBroker = Layer.unwrapScoped(
  Effect.gen(function*() {
    const configured = yield* Config.option(brokersConfig())
    const id = yield* clientId
    if (Option.isSome(configured)) return KafkaClient.layer({ brokers: configured.value, clientId: id })
    const dataDir = `${yield* Config.string("DATA_DIR").pipe(Config.withDefault("./data"))}/kafka`
    const port = yield* Config.port("KAFKA_LOCAL_PORT").pipe(Config.withDefault(9092))
    yield* Effect.logInfo("KAFKA_BROKERS is not set; starting a local Kafka broker").pipe(
      Effect.annotateLogs({ dataDir, port })
    )
    const broker = yield* LocalKafka.scoped({ dataDir, port })
    yield* Effect.logInfo("Local Kafka broker is ready").pipe(Effect.annotateLogs({ brokers: broker.brokers.join(",") }))
    // Registered after the broker's own release, so it runs first: the line precedes the stop.
    yield* Effect.addFinalizer(() => Effect.logInfo("Stopping the local Kafka broker").pipe(Effect.annotateLogs({ pid: broker.pid })))
    return KafkaClient.layer({ brokers: broker.brokers, clientId: id })
  })
)

/** Kafka clients for tools that only produce: `KAFKA_BROKERS`, defaulting to the local broker's 127.0.0.1:9092. */
export const KafkaForTools = Layer.unwrapEffect(
  Effect.gen(function*() {
    const brokers = yield* brokersConfig().pipe(Config.withDefault(["127.0.0.1:9092"] as ReadonlyArray<string>))
    return KafkaClient.layer({ brokers, clientId: yield* clientId })
  })
)

/** The write side on top of a Kafka client and a database: migrations, storage policies, topics, the consumer. */
export const IngestLive = Layer.unwrapEffect(Effect.map(ingestConfig, (config) => IngestJob.layer(config))).pipe(
  Layer.provideMerge(
    Layer.mergeAll(SensorDataWriter.Default, KafkaProducer.layer, KafkaAdmin.layer, IngestStats.Default, StorageMaintenance.Default)
  )
)

/** The read side on the HTTP address from `HTTP_HOST` and `HTTP_PORT`. */
export const QueryLive = Layer.merge(
  QueryServer,
  Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo("Query service stopped")))
).pipe(Layer.provideMerge(httpServerLayerConfig))

/**
 * The database of the query service: `QUERY_DATABASE_URL` when set (a read replica, say),
 * otherwise the same database as the ingest job.
 */
export const QueryDatabase = Layer.unwrapEffect(
  Effect.map(Config.option(Config.redacted("QUERY_DATABASE_URL")), (url) =>
    Option.isSome(url) ? Database.layerServer(url.value) : Database.layer
  )
)
