import { Command, ValidationError } from "@effect/cli"
import { Effect, Layer } from "effect"
import { replayCommand } from "./cli/commands/replay.ts"
import { KafkaForTools } from "./cli/Layers.ts"
import { KafkaProducer } from "./runtime/kafka/KafkaProducer.ts"
import { allInOneCommand, ingestCommand, queryCommand } from "./cli/commands/services.ts"
import { databaseServerCommand } from "./cli/commands/databaseServer.ts"
import { simulateCommand } from "./cli/commands/simulate.ts"
import { startCommand } from "./cli/commands/start.ts"
import { LoggingLive } from "./runtime/Logging.ts"
import { PlatformLive, runMain } from "./runtime/Platform.ts"

const sensorLogger = Command.make("sensor-logger").pipe(
  Command.withDescription("IoT time-series pipeline: Kafka readings into TimescaleDB, served over HTTP"),
  Command.withSubcommands([
    startCommand,
    allInOneCommand,
    ingestCommand,
    queryCommand,
    databaseServerCommand,
    simulateCommand,
    replayCommand.pipe(Command.provide(KafkaProducer.layer.pipe(Layer.provide(KafkaForTools))))
  ])
)

const cli = Command.run(sensorLogger, { name: "sensor-logger", version: "0.1.0" })

// @effect/cli prints a usage error itself; logging it again would only repeat it.
cli(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = 2))),
  Effect.provide(Layer.merge(PlatformLive, LoggingLive)),
  runMain
)
