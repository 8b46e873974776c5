import { Config, ConfigError, Context, Effect, Either, Layer, LogLevel, Option, Redacted, Runtime } from "effect"
import { Kafka, type LogEntry, logLevel, type SASLOptions } from "kafkajs"
import { booleanSetting, choiceSetting } from "../config/ConfigValues.ts"

/** TLS and SASL settings of the connection to the brokers. */
export interface KafkaSecurity {
  /** Connect over TLS, verifying the brokers' certificates against the system's CAs. */
  readonly ssl: boolean
  readonly sasl: Option.Option<{
    readonly mechanism: "plain" | "scram-sha-256" | "scram-sha-512"
    readonly username: string
    readonly password: Redacted.Redacted
  }>
}

/** Settings of the Kafka connection, read from `KAFKA_BROKERS`, `KAFKA_CLIENT_ID` and the `KAFKA_SSL`/`KAFKA_SASL_*` variables. */
export interface KafkaClientConfig {
  /** Bootstrap servers, `host:port`. */
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  /** Plain TCP without authentication when undefined, as for the local broker. */
  readonly security?: KafkaSecurity | undefined
}

/**
 * Reads `KAFKA_SSL` (default false) and SASL authentication: `KAFKA_SASL_MECHANISM` (`plain`,
 * `scram-sha-256` or `scram-sha-512`) with `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD`, which
 * are required once a mechanism is set.
 *
 * NOTE: TLS and SASL are passed to kafkajs as they are; the tests run against a plaintext broker only.
 */
export const kafkaSecurityConfig: Config.Config<KafkaSecurity> = Config.all({
  ssl: booleanSetting("KAFKA_SSL").pipe(Config.withDefault(false)),
  mechanism: Config.option(choiceSetting("KAFKA_SASL_MECHANISM", ["plain", "scram-sha-256", "scram-sha-512"])),
  username: Config.option(Config.string("KAFKA_SASL_USERNAME")),
  password: Config.option(Config.redacted("KAFKA_SASL_PASSWORD"))
}).pipe(
  Config.mapOrFail(({ mechanism, password, ssl, username }): Either.Either<KafkaSecurity, ConfigError.ConfigError> => {
    if (Option.isNone(mechanism)) {
      return Option.isSome(username) || Option.isSome(password)
        ? Either.left(ConfigError.MissingData(["KAFKA_SASL_MECHANISM"], "KAFKA_SASL_MECHANISM is not set: set it to plain, scram-sha-256 or scram-sha-512 to use KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"))
        : Either.right({ ssl, sasl: Option.none() })
    }
    if (Option.isNone(username)) {
      return Either.left(ConfigError.MissingData(["KAFKA_SASL_USERNAME"], `KAFKA_SASL_USERNAME is not set: SASL ${mechanism.value} needs a user name`))
    }
    if (Option.isNone(password)) {
      return Either.left(ConfigError.MissingData(["KAFKA_SASL_PASSWORD"], `KAFKA_SASL_PASSWORD is not set: SASL ${mechanism.value} needs a password`))
    }
    return Either.right({ ssl, sasl: Option.some({ mechanism: mechanism.value, username: username.value, password: password.value }) })
  })
)

const toSaslOptions = (security: KafkaSecurity | undefined): SASLOptions | undefined =>
  security === undefined || Option.isNone(security.sasl)
    ? undefined
    : {
      mechanism: security.sasl.value.mechanism,
      username: security.sasl.value.username,
      password: Redacted.value(security.sasl.value.password)
    } as SASLOptions

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

/** `KAFKA_BROKERS`, failing with how to set it when it is missing. */
export const requiredBrokersConfig: Config.Config<ReadonlyArray<string>> = Config.option(brokersConfig()).pipe(
  Config.mapOrFail((configured) =>
    Option.isSome(configured)
      ? Either.right(configured.value)
      : Either.left(
        ConfigError.MissingData(
          ["KAFKA_BROKERS"],
          "KAFKA_BROKERS is not set: give the bootstrap servers as host:port,host:port (for example 127.0.0.1:9092), " +
            "or run all-in-one, which starts a local broker"
        )
      )
  )
)

/** `KAFKA_CLIENT_ID`, the client id sent to the brokers. */
export const clientIdConfig = Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("sensor-logger"))

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
        const sasl = toSaslOptions(config.security)
        const kafka = new Kafka({
          brokers: [...config.brokers],
          clientId: config.clientId,
          logLevel: logLevel.WARN,
          logCreator: makeLogCreator(runtime),
          ...(config.security?.ssl === true ? { ssl: true } : {}),
          ...(sasl === undefined ? {} : { sasl })
        })
        return { kafka, config }
      })
    )

  /** A client configured from `KAFKA_BROKERS` (required), `KAFKA_CLIENT_ID` (default `sensor-logger`), `KAFKA_SSL` and `KAFKA_SASL_*`. */
  static readonly layerConfig: Layer.Layer<KafkaClient, ConfigError.ConfigError> = Layer.unwrapEffect(
    Effect.gen(function*() {
      const brokers = yield* requiredBrokersConfig
      const clientId = yield* clientIdConfig
      const security = yield* kafkaSecurityConfig
      return KafkaClient.layer({ brokers, clientId, security })
    })
  )
}
