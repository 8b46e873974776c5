/**
 * Every environment setting each command reads, checked together before the command opens a
 * database, a broker or a port. A wrong value thus stops the process at once, and the entry
 * point reports all problems in one message (`describeConfigError`).
 *
 * @module
 */
import { Config, Effect } from "effect"
import { healthConfig } from "../runtime/telemetry/Health.ts"
import { ingestConfig } from "../ingest/IngestConfig.ts"
import { stallTimeoutConfig } from "../ingest/IngestHealth.ts"
import { storageConfig } from "../ingest/StorageConfig.ts"
import { ingestHttpConfig } from "../ingest/IngestOperationsServer.ts"
import { queryConfig } from "../query/QueryConfig.ts"
import { DatabaseConfig, dataDirConfig } from "../runtime/database/Database.ts"
import { databaseServerConfig } from "../runtime/database/EmbeddedDatabaseServer.ts"
import { httpServerConfig } from "../runtime/http/HttpServerLayer.ts"
import { brokersConfig, clientIdConfig, kafkaSecurityConfig, requiredBrokersConfig } from "../runtime/kafka/KafkaClient.ts"
import { loggingConfig } from "../runtime/Logging.ts"
import { tracingConfig } from "../runtime/telemetry/TracingConfig.ts"
import { localBrokerPortConfig, queryDatabaseUrlConfig } from "./Layers.ts"

/** `service.name` of each entry point's spans when `OTEL_SERVICE_NAME` is not set. */
export const serviceNames = {
  ingest: "sensor-logger-ingest",
  query: "sensor-logger-query",
  allInOne: "sensor-logger",
  simulator: "sensor-logger-simulator",
  replay: "sensor-logger-replay",
  replayDlq: "sensor-logger-replay-dlq"
} as const

const common = (serviceName: string): ReadonlyArray<Config.Config<unknown>> => [
  loggingConfig,
  tracingConfig(serviceName),
  clientIdConfig,
  kafkaSecurityConfig
]

const ingestSide: ReadonlyArray<Config.Config<unknown>> = [ingestConfig, storageConfig, stallTimeoutConfig, healthConfig, DatabaseConfig]
const querySide: ReadonlyArray<Config.Config<unknown>> = [httpServerConfig, queryConfig, healthConfig, DatabaseConfig, queryDatabaseUrlConfig]

/** The settings of each command. */
export const commandSettings = {
  ingest: [...common(serviceNames.ingest), requiredBrokersConfig, ingestHttpConfig, ...ingestSide],
  query: [...common(serviceNames.query), ...querySide],
  allInOne: [...common(serviceNames.allInOne), Config.option(brokersConfig()), localBrokerPortConfig, ...ingestSide, ...querySide],
  databaseServer: [loggingConfig, dataDirConfig, databaseServerConfig],
  tools: (serviceName: string) => [...common(serviceName), Config.option(brokersConfig())]
} as const

/** Reads every setting in `settings` and fails with all their errors together, or succeeds with nothing. */
export const validateSettings = (settings: ReadonlyArray<Config.Config<unknown>>) => Effect.asVoid(Config.all(settings))
