import { Command, Options } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { Cause, Console, Duration, Effect, Schedule } from "effect"
import { IngestStats } from "../../ingest/IngestStats.ts"
import { defaultMetrics, runSimulator, type SimulatorOptions, validateSimulatorOptions } from "../../tools/simulator/Simulator.ts"
import { commandSettings, serviceNames } from "../Settings.ts"
import { AllInOneLive, runService, runUntilStopped } from "./services.ts"

/** Defaults of the options, also shown in `--help`, which @effect/cli does not do for `withDefault`. */
const defaults = { sensors: 10, rate: 50 } as const

const sensors = Options.integer("sensors").pipe(
  Options.withDefault(defaults.sensors),
  Options.withDescription(`Number of simulated sensors. Default: ${defaults.sensors}`)
)
const rate = Options.integer("rate").pipe(
  Options.withDefault(defaults.rate),
  Options.withDescription(
    `Readings per second over all simulated sensors, each message one reading of the metrics ${defaultMetrics.join(",")}. Default: ${defaults.rate}`
  )
)

const baseUrl = (address: HttpServer.Address) =>
  address._tag === "TcpAddress"
    ? `http://${address.hostname === "0.0.0.0" || address.hostname === "::" ? "127.0.0.1" : address.hostname}:${address.port}`
    : `unix:${address.path}`

const simulatorOptions = (options: { readonly sensors: number; readonly rate: number }): SimulatorOptions => ({
  sensors: options.sensors,
  rate: options.rate,
  readingsPerMessage: 1,
  metrics: defaultMetrics,
  seed: 1
})

/** The simulator, the start-up message and the progress lines of `start`, inside the all-in-one layers. */
const startProgram = (options: { readonly sensors: number; readonly rate: number }) =>
  Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const stats = yield* IngestStats
    const url = baseUrl(server.address)
    yield* Console.log(
      [
        "",
        "sensor-logger is running: the simulator produces to Kafka, the ingest job writes to TimescaleDB.",
        `  readings:  curl '${url}/v1/sensor-data?page_size=5'`,
        `  sensors:   curl '${url}/v1/sensors'`,
        `  averages:  curl '${url}/v1/sensor-data/avg'`,
        `  latest:    curl '${url}/v1/latest'`,
        `  hourly:    curl '${url}/v1/aggregates?metric=temperature&fn=max&bucket=1h&group_by=sensor'`,
        `  API docs:  ${url}/docs   (OpenAPI: ${url}/openapi.json)`,
        `  health:    curl '${url}/health/ready'   (Prometheus: ${url}/metrics)`,
        "Press Ctrl-C to stop.",
        ""
      ].join("\n")
    )
    yield* runSimulator(simulatorOptions(options)).pipe(
      Effect.tapErrorCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.logInfo("Simulator stopped") : Effect.logError("Simulator failed", cause)
      ),
      Effect.forkScoped
    )
    const progress = stats.totals.pipe(
      Effect.flatMap((totals) =>
        Effect.logInfo("Ingest progress").pipe(
          Effect.annotateLogs({
            readings: totals.readings,
            rows: totals.rows,
            sensors: totals.sensors,
            deadLetters: totals.deadLetters,
            batches: totals.batches
          })
        )
      ),
      Effect.repeat(Schedule.spaced(Duration.seconds(10))),
      Effect.delay(Duration.seconds(10))
    )
    yield* Effect.raceFirst(progress, runUntilStopped)
  })

/**
 * `sensor-logger start`: the all-in-one pipeline fed by the built-in simulator, for a first look.
 * Prints where to query it and the ingest totals every 10 seconds; Ctrl-C stops the simulator,
 * lets the ingest job commit what it wrote, and shuts everything down.
 */
export const startCommand = Command.make("start", { sensors, rate }, (options) =>
  // The simulator runs in the background of the pipeline, so a bad option is rejected before anything starts.
  Effect.zipRight(
    validateSimulatorOptions(simulatorOptions(options)),
    runService(commandSettings.allInOne, serviceNames.allInOne, Effect.scoped(startProgram(options)), AllInOneLive)
  ).pipe(Effect.annotateLogs({ service: "all-in-one" }))).pipe(Command.withDescription("Run the all-in-one pipeline with the built-in device simulator feeding it"))
