import { Config, ConfigError, Either } from "effect"
import { readingsTopic, sensorsTopic } from "../domain/Message.ts"
import { defaultTimestampRange, EpochMicros, formatEpochMicros, parseIsoInstant, type TimestampRange } from "../domain/Timestamp.ts"
import { integerSetting } from "../runtime/config/ConfigValues.ts"

/** Settings of the ingest job; `IngestConfig.config` reads them from the environment. */
export interface IngestConfig {
  readonly groupId: string
  readonly readingsTopic: string
  readonly sensorsTopic: string
  /** Partitions of the topics the job creates when they are missing. */
  readonly topicPartitions: number
  /** Partitions processed at once. */
  readonly concurrency: number
  /** Maximum time the broker waits to fill a fetch, in milliseconds (the linger of a batch). */
  readonly maxWaitMillis: number
  /** Bytes the broker waits for before it returns a fetch early. */
  readonly minBytes: number
  /** Largest fetch of one partition, in bytes: with `maxRows`, the size limit of a batch. */
  readonly maxBatchBytes: number
  /** Most metric values written by one statement; a larger batch is written in several. */
  readonly maxRows: number
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

/** Reads the ingest settings; every variable has a default (docs/configuration.md lists them). */
export const ingestConfig: Config.Config<IngestConfig> = Config.all({
  groupId: Config.string("KAFKA_GROUP_ID").pipe(Config.withDefault("logger.job")),
  readingsTopic: Config.string("KAFKA_READINGS_TOPIC").pipe(Config.withDefault(readingsTopic)),
  sensorsTopic: Config.string("KAFKA_SENSORS_TOPIC").pipe(Config.withDefault(sensorsTopic)),
  topicPartitions: positiveInt("KAFKA_TOPIC_PARTITIONS", 3),
  concurrency: positiveInt("INGEST_CONCURRENCY", 2),
  maxWaitMillis: positiveInt("INGEST_LINGER_MS", 250),
  minBytes: positiveInt("INGEST_FETCH_MIN_BYTES", 64 * 1024),
  maxBatchBytes: positiveInt("INGEST_BATCH_MAX_BYTES", 4 * 1024 * 1024),
  maxRows: positiveInt("INGEST_BATCH_MAX_ROWS", 20_000),
  deadLetterSuffix: Config.string("INGEST_DEAD_LETTER_SUFFIX").pipe(Config.withDefault(".dlq")),
  timestampRange: Config.all({
    min: instant("INGEST_TIMESTAMP_MIN", defaultTimestampRange.min),
    max: instant("INGEST_TIMESTAMP_MAX", defaultTimestampRange.max)
  }).pipe(
    Config.validate({
      message: `INGEST_TIMESTAMP_MIN must be earlier than INGEST_TIMESTAMP_MAX (defaults ${formatEpochMicros(defaultTimestampRange.min)} and ${formatEpochMicros(defaultTimestampRange.max)})`,
      validation: (range) => range.min < range.max
    })
  )
})
