import { Command, ValidationError } from "@effect/cli"
import { LocalKafkaError } from "../infra/kafka/LocalKafka.ts"
import type { SqlError } from "@effect/sql"
import { ConfigError, Effect, Layer, Predicate } from "effect"
import { replayCommand } from "./cli/commands/replay.ts"
import { InvalidReplayOption, replayDlqCommand } from "./cli/commands/replayDlq.ts"
import { allInOneCommand, ingestCommand, queryCommand } from "./cli/commands/services.ts"
import { databaseServerCommand } from "./cli/commands/databaseServer.ts"
import { simulateCommand } from "./cli/commands/simulate.ts"
import { startCommand } from "./cli/commands/start.ts"
import { KafkaForTools } from "./cli/Layers.ts"
import { withPlainConsole } from "./cli/PlainConsole.ts"
import { commandSettings, serviceNames, validateSettings } from "./cli/Settings.ts"
import { describeConfigError } from "./runtime/config/ConfigReport.ts"
import { EmbeddedDatabaseError } from "./runtime/database/EmbeddedDatabase.ts"
import { DatabaseServerError } from "./runtime/database/EmbeddedDatabaseServer.ts"
import { sqlErrorDetail } from "./runtime/database/SqlErrorDetail.ts"
import { KafkaProducer } from "./runtime/kafka/KafkaProducer.ts"
import { LoggingLive } from "./runtime/Logging.ts"
import { PlatformLive, runMain } from "./runtime/Platform.ts"
import { HttpServerStartError } from "./runtime/http/HttpServerLayer.ts"
import { TracingLive } from "./runtime/telemetry/Tracing.ts"
import { CsvError } from "./tools/replay/Csv.ts"
import { InvalidReplayOptions, InvalidSensorId, ReplayColumnError, ReplayStoppedAtInvalidRow } from "./tools/replay/Replay.ts"
import { InvalidTimeFormat, InvalidTimestamp, InvalidTimeZone } from "./tools/replay/TimeColumn.ts"
import { InvalidSimulatorOptions } from "./tools/simulator/Simulator.ts"

/** Exit code of a process stopped by its configuration (`EX_CONFIG` of sysexits.h). */
const configErrorExitCode = 78

const sensorLogger = Command.make("sensor-logger").pipe(
  Command.withDescription("IoT time-series pipeline: Kafka readings into TimescaleDB, served over HTTP"),
  Command.withSubcommands([
    startCommand,
    allInOneCommand,
    ingestCommand,
    queryCommand,
    databaseServerCommand,
    simulateCommand,
    replayCommand.pipe(
      Command.provide(KafkaProducer.layer.pipe(Layer.provide(KafkaForTools))),
      Command.provide(TracingLive(serviceNames.replay)),
      Command.provideEffectDiscard(validateSettings(commandSettings.tools(serviceNames.replay)))
    ),
    replayDlqCommand
  ])
)

const cli = Command.run(sensorLogger, { name: "sensor-logger", version: "0.1.0" })

/**
 * Logs a configuration error once, naming each variable, its value and what was expected, and
 * sets the exit code. When `LOG_LEVEL` or `LOG_FORMAT` is invalid, the process logger uses its
 * defaults, logfmt at level info.
 */
const reportConfigError = (error: ConfigError.ConfigError) =>
  Effect.flatMap(describeConfigError(error), (message) => Effect.logError(message)).pipe(
    Effect.zipRight(Effect.sync(() => void (process.exitCode = configErrorExitCode)))
  )

/**
 * Logs a database failure that stopped the command, with the database's message and SQLSTATE as
 * fields, and sets exit code 1. Effect's own report of the failure puts that message at the end
 * of a multi-line stack trace.
 */
const reportDatabaseError = (error: SqlError.SqlError) => {
  const { detail, sqlState } = sqlErrorDetail(error)
  return Effect.logError(`Stopped by a database error: ${detail}`).pipe(
    Effect.annotateLogs({ sqlState }),
    Effect.zipRight(Effect.sync(() => void (process.exitCode = 1)))
  )
}

const isSqlError = (error: unknown): error is SqlError.SqlError => Predicate.isTagged(error, "SqlError")

/** Errors whose message already names the value at fault and what to do, so a stack trace adds nothing. */
const userErrorClasses = [
  InvalidSimulatorOptions,
  InvalidReplayOptions,
  InvalidReplayOption,
  ReplayColumnError,
  ReplayStoppedAtInvalidRow,
  InvalidSensorId,
  InvalidTimeFormat,
  InvalidTimeZone,
  InvalidTimestamp,
  CsvError,
  HttpServerStartError
]

/**
 * Tells whether `error` comes from the user's options, input files or environment rather than
 * from a defect. Such errors are an invalid option, an invalid CSV row, a data directory locked by
 * another process, and a port in use, the local broker's included. Other failures keep Effect's
 * report with its stack trace.
 */
const isUserError = (error: unknown): error is Error => {
  if (userErrorClasses.some((errorClass) => error instanceof errorClass)) return true
  if (error instanceof EmbeddedDatabaseError) return error.reason === "InvalidDataDir" || error.reason === "DataDirInUse"
  if (error instanceof DatabaseServerError) return error.reason === "ListenFailed"
  if (error instanceof LocalKafkaError) return error.reason === "DataDirLocked" || error.reason === "PortInUse"
  return false
}

/** Logs the message of a user-facing error as one line without a stack trace, and sets exit code 1. */
const reportUserError = (error: Error) =>
  Effect.logError(error.message).pipe(Effect.zipRight(Effect.sync(() => void (process.exitCode = 1))))

// @effect/cli prints a usage error itself; logging it again would only repeat it.
cli(process.argv).pipe(
  withPlainConsole,
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = 2))),
  Effect.catchIf(ConfigError.isConfigError, reportConfigError),
  Effect.catchIf(isSqlError, reportDatabaseError),
  Effect.catchIf(isUserError, reportUserError),
  Effect.provide(Layer.merge(PlatformLive, LoggingLive)),
  runMain
)
