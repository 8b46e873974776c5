import { Config, ConfigError, Effect, Either, Layer, Option, Redacted } from "effect"
import { LocalKafka } from "../../infra/kafka/LocalKafka.ts"
import { ingestConfig } from "../ingest/IngestConfig.ts"
import { IngestHealthChecks } from "../ingest/IngestHealth.ts"
import { IngestJob } from "../ingest/IngestJob.ts"
import { IngestStats } from "../ingest/IngestStats.ts"
import { SensorDataWriter } from "../ingest/SensorDataWriter.ts"
import { QueryHealthChecks } from "../query/QueryOperations.ts"
import { StorageMaintenance } from "../ingest/StorageMaintenance.ts"
import { QueryServer } from "../query/QueryServer.ts"
import { integerSetting } from "../runtime/config/ConfigValues.ts"
import { Database, maxConnectionsConfig } from "../runtime/database/Database.ts"
import { httpServerLayerConfig } from "../runtime/http/HttpServerLayer.ts"
import { KafkaAdmin } from "../runtime/kafka/KafkaAdmin.ts"
import { brokersConfig, clientIdConfig, KafkaClient, kafkaSecurityConfig } from "../runtime/kafka/KafkaClient.ts"
import { KafkaProducer } from "../runtime/kafka/KafkaProducer.ts"
import { ConsumerProgress } from "../runtime/telemetry/ConsumerProgress.ts"
import { HealthRegistry } from "../runtime/telemetry/Health.ts"

/** `KAFKA_LOCAL_PORT`: port of the local broker that `all-in-one` starts without `KAFKA_BROKERS`. */
export const localBrokerPortConfig = integerSetting("KAFKA_LOCAL_PORT", { min: 1, max: 65_535 }).pipe(Config.withDefault(9092))

/** The Kafka client for `KAFKA_BROKERS`, which must be set. */
export const KafkaFromConfig = KafkaClient.layerConfig

/**
 * The Kafka client for `KAFKA_BROKERS`, or, when it is not set, for a local single-node broker
 * started in `${DATA_DIR}/kafka` on `KAFKA_LOCAL_PORT` (default 9092) and stopped with the layer.
 */
export const KafkaOrLocalBroker = Layer.unwrapScoped(
  Effect.gen(function*() {
    const configured = yield* Config.option(brokersConfig())
    const id = yield* clientIdConfig
    if (Option.isSome(configured)) {
      return KafkaClient.layer({ brokers: configured.value, clientId: id, security: yield* kafkaSecurityConfig })
    }
    const dataDir = `${yield* Config.string("DATA_DIR").pipe(Config.withDefault("./data"))}/kafka`
    const port = yield* localBrokerPortConfig
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
    return KafkaClient.layer({ brokers, clientId: yield* clientIdConfig, security: yield* kafkaSecurityConfig })
  })
)

/**
 * The write side on top of a Kafka client and a database: migrations, topics, storage policies, the consumer,
 * and its readiness checks. `HealthRegistry.Default` is one layer value, so the ingest and query
 * sides of one process share a registry.
 */
export const IngestLive = Layer.merge(
  Layer.unwrapEffect(Effect.map(ingestConfig, (config) => IngestJob.layer(config))),
  IngestHealthChecks
).pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      SensorDataWriter.Default,
      KafkaProducer.layer,
      KafkaAdmin.layer,
      IngestStats.Default,
      ConsumerProgress.Default,
      HealthRegistry.Default,
      StorageMaintenance.Default
    )
  ),
  Layer.annotateLogs("service", "ingest")
)

/** The read side on the HTTP address from `HTTP_HOST` and `HTTP_PORT`, with the operations endpoints. */
export const QueryLive = Layer.mergeAll(
  QueryServer,
  QueryHealthChecks,
  Layer.scopedDiscard(Effect.addFinalizer(() => Effect.logInfo("Query service stopped")))
).pipe(
  Layer.provideMerge(httpServerLayerConfig),
  Layer.provideMerge(HealthRegistry.Default),
  Layer.annotateLogs("service", "query")
)

/** `QUERY_DATABASE_URL`, a `postgres://` URL; unset or empty means the ingest job's database. */
export const queryDatabaseUrlConfig: Config.Config<Option.Option<Redacted.Redacted>> = Config.redacted("QUERY_DATABASE_URL").pipe(
  Config.mapOrFail((url) => {
    const text = Redacted.value(url).trim()
    if (text === "") return Either.right(Option.none())
    const scheme = URL.canParse(text) ? new URL(text).protocol : undefined
    return scheme === "postgres:" || scheme === "postgresql:"
      ? Either.right(Option.some(Redacted.make(text)))
      : Either.left(ConfigError.InvalidData(["QUERY_DATABASE_URL"], "expected postgres://user:password@host:5432/database"))
  }),
  Config.withDefault(Option.none())
)

/**
 * The database of the query service: `QUERY_DATABASE_URL` when set (a read replica, say), with a
 * pool of `DATABASE_MAX_CONNECTIONS`, otherwise the same database as the ingest job.
 */
export const QueryDatabase = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = yield* queryDatabaseUrlConfig
    if (Option.isNone(url)) {
      return Database.layer
    }
    const maxConnections = yield* maxConnectionsConfig
    return Database.layerServer(url.value, { maxConnections })
  })
)
