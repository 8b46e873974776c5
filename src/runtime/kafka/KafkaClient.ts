import { Config, ConfigError, Context, Effect, Either, Layer, LogLevel, Option, Runtime } from "effect"
import { Kafka, type LogEntry, logLevel } from "kafkajs"

/** Settings of the Kafka connection, read from `KAFKA_BROKERS` and `KAFKA_CLIENT_ID`. */
export interface KafkaClientConfig {
  /** Bootstrap servers, `host:port`. */
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
}

/** Parses `KAFKA_BROKERS`, a comma-separated list of `host:port` bootstrap servers. */
export const brokersConfig = (name = "KAFKA_BROKERS"): Config.Config<ReadonlyArray<string>> =>
  Config.string(name).pipe(
    Config.withDescription("the Kafka bootstrap servers as host:port,host:port, for example 127.0.0.1:9092"),
    Config.mapOrFail((text) => {
      const brokers = text.split(",").map((broker) => broker.trim()).filter((broker) => broker.length > 0)
      const invalid = brokers.find((broker) => !/^[^\s:]+:\d{1,5}$/.test(broker))
      if (brokers.length === 0 || invalid !== undefined) {
        return Either.left(
          ConfigError.InvalidData([name], `expected a comma-separated list of host:port, got ${JSON.stringify(text)}`)
        )
      }
      return Either.right(brokers)
    })
  )

const clientIdConfig = Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("sensor-logger"))

const effectLevel: Record<number, LogLevel.LogLevel> = {
  [logLevel.ERROR]: LogLevel.Error,
  [logLevel.WARN]: LogLevel.Warning,
  [logLevel.INFO]: LogLevel.Info,
  [logLevel.DEBUG]: LogLevel.Debug
}

/**
 * Routes kafkajs's log lines into the Effect logger, under a `kafkajs` annotation. kafkajs logs
 * every error response of a request at ERROR, including retriable ones it retries itself (a
 * coordinator still loading after a broker start). Those lines go out at DEBUG, because the
 * consumer's crash events report what was not recovered.
 */
const makeLogCreator = (runtime: Runtime.Runtime<never>) => () => (entry: LogEntry) => {
  const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry.log
  // The consumer's "Crash: …" line is reported by the CRASH event handler in PartitionConsumer.ts,
  // as a warning when kafkajs restarts the consumer and as an error when it gives up.
  const reportedElsewhere = entry.level === logLevel.ERROR &&
    (entry.namespace === "Connection" || (entry.namespace === "Consumer" && message.startsWith("Crash:")))
  const level = reportedElsewhere ? LogLevel.Debug : effectLevel[entry.level] ?? LogLevel.Info
  const annotations = entry.namespace ? { kafkajs: entry.namespace, ...fields } : fields
  Runtime.runFork(runtime)(Effect.logWithLevel(level, message).pipe(Effect.annotateLogs(annotations)))
}

/** The kafkajs client every producer, consumer and admin of the process is made from. */
export class KafkaClient extends Context.Tag("sensor-logger/KafkaClient")<
  KafkaClient,
  { readonly kafka: Kafka; readonly config: KafkaClientConfig }
>() {
  /** A client for the given brokers. kafkajs logs below WARN are dropped; they are per-request noise. */
  static readonly layer = (config: KafkaClientConfig): Layer.Layer<KafkaClient> =>
    Layer.effect(
      KafkaClient,
      Effect.gen(function*() {
        const runtime = yield* Effect.runtime<never>()
        const kafka = new Kafka({
          brokers: [...config.brokers],
          clientId: config.clientId,
          logLevel: logLevel.WARN,
          logCreator: makeLogCreator(runtime)
        })
        return { kafka, config }
      })
    )

  /** A client configured from `KAFKA_BROKERS` (required) and `KAFKA_CLIENT_ID` (default `sensor-logger`). */
  static readonly layerConfig: Layer.Layer<KafkaClient, ConfigError.ConfigError> = Layer.unwrapEffect(
    Effect.gen(function*() {
      const configured = yield* Config.option(brokersConfig())
      if (Option.isNone(configured)) {
        return yield* Effect.fail(
          ConfigError.MissingData(
            ["KAFKA_BROKERS"],
            "KAFKA_BROKERS is not set: give the bootstrap servers as host:port,host:port (for example 127.0.0.1:9092), " +
              "or run all-in-one, which starts a local broker"
          )
        )
      }
      const brokers = configured.value
      const clientId = yield* clientIdConfig
      return KafkaClient.layer({ brokers, clientId })
    })
  )
}
