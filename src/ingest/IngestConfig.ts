import { Config, ConfigError, Either } from "effect"
import { readingsTopic, sensorsTopic } from "../domain/Message.ts"
import { defaultTimestampRange, EpochMicros, formatEpochMicros, parseIsoInstant, type TimestampRange } from "../domain/Timestamp.ts"
import { integerSetting } from "../runtime/config/ConfigValues.ts"

/**
 * Rule for a reading whose key (sensor, metric, instant) is already stored: `update` overwrites
 * the stored value, `ignore` keeps it. Within one batch the same rule applies, so the result does
 * not depend on how records were batched. With `update` the record with the later offset wins,
 * with `ignore` the earlier one.
 */
export type OnConflict = "update" | "ignore"

/** Settings of the ingest job; `ingestConfig` reads them from the environment. */
export interface IngestConfig {
  readonly groupId: string
  readonly readingsTopic: string
  readonly sensorsTopic: string
  /** Partitions of the topics the job creates when they are missing. */
  readonly topicPartitions: number
  /** Write transactions running at once, over all partitions. */
  readonly writeConcurrency: number
  /** Maximum time a fetched record waits for more records before its batch is written, in milliseconds. */
  readonly lingerMillis: number
  /** A batch is written once it contains this many metric values; also the maximum rows of one insert statement. */
  readonly batchMaxRows: number
  /** A batch is written once its records hold this many bytes. */
  readonly batchMaxBytes: number
  /** Records of one partition fetched and not yet written, above which its fetching pauses. */
  readonly partitionMaxRecords: number
  /** Bytes of one partition fetched and not yet written, above which its fetching pauses. */
  readonly partitionMaxBytes: number
  /** Most bytes one fetch returns for one partition. */
  readonly fetchMaxBytes: number
  /** Bytes the broker waits for before it responds to a fetch. */
  readonly fetchMinBytes: number
  /** Maximum time the broker waits to respond to a fetch while fewer than `fetchMinBytes` are there, in milliseconds. */
  readonly fetchMaxWaitMillis: number
  readonly onConflict: OnConflict
  /** Maximum wait for the partitions to write and commit the records they have taken, at shutdown and on a rebalance. */
  readonly shutdownTimeoutMillis: number
  /** First delay between attempts of a failed write, dead-letter send or commit; it doubles up to `retryMaxMillis`. */
  readonly retryInitialMillis: number
  readonly retryMaxMillis: number
  /** Appended to a topic's name to give its dead-letter topic. */
  readonly deadLetterSuffix: string
  readonly timestampRange: TimestampRange
}

const positiveInt = (name: string, fallback: number) => integerSetting(name, { min: 1 }).pipe(Config.withDefault(fallback))

const instant = (name: string, fallback: EpochMicros) =>
  Config.string(name).pipe(
    Config.mapOrFail((text) =>
      Either.mapLeft(parseIsoInstant(text), (reason) => ConfigError.InvalidData([name], `${JSON.stringify(text)}: ${reason}`))
    ),
    Config.withDefault(fallback)
  )

const onConflict = Config.string("INGEST_ON_CONFLICT").pipe(
  Config.mapOrFail((text): Either.Either<OnConflict, ConfigError.ConfigError> => {
    const value = text.trim().toLowerCase()
    return value === "update" || value === "ignore"
      ? Either.right(value)
      : Either.left(ConfigError.InvalidData(["INGEST_ON_CONFLICT"], `expected update or ignore, got ${JSON.stringify(text)}`))
  }),
  Config.withDefault<OnConflict>("update")
)

const retryDelays = Config.all({
  initial: positiveInt("INGEST_RETRY_INITIAL_MS", 200),
  max: positiveInt("INGEST_RETRY_MAX_MS", 30_000)
}).pipe(
  Config.validate({
    message: "INGEST_RETRY_INITIAL_MS must not be larger than INGEST_RETRY_MAX_MS (defaults 200 and 30000)",
    validation: (delays) => delays.initial <= delays.max
  })
)

const timestampRange = Config.all({
  min: instant("INGEST_TIMESTAMP_MIN", defaultTimestampRange.min),
  max: instant("INGEST_TIMESTAMP_MAX", defaultTimestampRange.max)
}).pipe(
  Config.validate({
    message: `INGEST_TIMESTAMP_MIN must be earlier than INGEST_TIMESTAMP_MAX (defaults ${formatEpochMicros(defaultTimestampRange.min)} and ${formatEpochMicros(defaultTimestampRange.max)})`,
    validation: (range) => range.min < range.max
  })
)

/** Reads the ingest settings; every variable has a default (docs/configuration.md lists them). */
export const ingestConfig: Config.Config<IngestConfig> = Config.all({
  groupId: Config.string("KAFKA_GROUP_ID").pipe(Config.withDefault("logger.job")),
  readingsTopic: Config.string("KAFKA_READINGS_TOPIC").pipe(Config.withDefault(readingsTopic)),
  sensorsTopic: Config.string("KAFKA_SENSORS_TOPIC").pipe(Config.withDefault(sensorsTopic)),
  topicPartitions: positiveInt("KAFKA_TOPIC_PARTITIONS", 3),
  writeConcurrency: positiveInt("INGEST_CONCURRENCY", 4),
  lingerMillis: positiveInt("INGEST_LINGER_MS", 250),
  batchMaxRows: positiveInt("INGEST_BATCH_MAX_ROWS", 20_000),
  batchMaxBytes: positiveInt("INGEST_BATCH_MAX_BYTES", 4 * 1024 * 1024),
  partitionMaxRecords: positiveInt("INGEST_PARTITION_MAX_RECORDS", 50_000),
  partitionMaxBytes: positiveInt("INGEST_PARTITION_MAX_BYTES", 16 * 1024 * 1024),
  fetchMaxBytes: positiveInt("INGEST_FETCH_MAX_BYTES", 1024 * 1024),
  fetchMinBytes: positiveInt("INGEST_FETCH_MIN_BYTES", 1),
  fetchMaxWaitMillis: positiveInt("INGEST_FETCH_MAX_WAIT_MS", 500),
  onConflict,
  shutdownTimeoutMillis: positiveInt("INGEST_SHUTDOWN_TIMEOUT_MS", 30_000),
  retryDelays,
  deadLetterSuffix: Config.string("INGEST_DEAD_LETTER_SUFFIX").pipe(Config.withDefault(".dlq")),
  timestampRange
}).pipe(
  Config.map(({ retryDelays, ...rest }) => ({ ...rest, retryInitialMillis: retryDelays.initial, retryMaxMillis: retryDelays.max }))
)
