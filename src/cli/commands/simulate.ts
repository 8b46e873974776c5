import { Command, Options } from "@effect/cli"
import { Console, Duration, Effect, Option } from "effect"
import process from "node:process"
import { defaultMetrics, MetricList, runSimulator, type SimulatorSummary, validateSimulatorOptions } from "../../tools/simulator/Simulator.ts"
import { KafkaProducer } from "../../runtime/kafka/KafkaProducer.ts"
import { TracingLive } from "../../runtime/telemetry/Tracing.ts"
import { KafkaForTools } from "../Layers.ts"
import { commandSettings, serviceNames, validateSettings } from "../Settings.ts"

/** Defaults of the options, also shown in `--help`, which @effect/cli does not do for `withDefault`. */
const defaults = { sensors: 10, rate: 100, perMessage: 1, seed: 1, firstSensorId: 1 } as const

const options = {
  sensors: Options.integer("sensors").pipe(
    Options.withDefault(defaults.sensors),
    Options.withDescription(`Number of sensors. Default: ${defaults.sensors}`)
  ),
  rate: Options.integer("rate").pipe(
    Options.withDefault(defaults.rate),
    Options.withDescription(`Readings per second over all sensors. Default: ${defaults.rate}`)
  ),
  perMessage: Options.integer("per-message").pipe(
    Options.withDefault(defaults.perMessage),
    Options.withDescription(`Readings per Kafka message (the original format is an array). Default: ${defaults.perMessage}`)
  ),
  metrics: Options.text("metrics").pipe(
    Options.withSchema(MetricList),
    Options.withDefault(defaultMetrics),
    Options.withDescription(`Comma-separated metric names of each reading. Default: ${defaultMetrics.join(",")}`)
  ),
  count: Options.integer("count").pipe(
    Options.optional,
    Options.withDescription("Stop after this many readings. Default: no limit")
  ),
  duration: Options.integer("duration").pipe(
    Options.optional,
    Options.withDescription("Stop after this many seconds. Default: no limit")
  ),
  seed: Options.integer("seed").pipe(
    Options.withDefault(defaults.seed),
    Options.withDescription(`Seed of the generated values. Default: ${defaults.seed}`)
  ),
  firstSensorId: Options.integer("first-sensor-id").pipe(
    Options.withDefault(defaults.firstSensorId),
    Options.withDescription(`Id of the first sensor; the others follow consecutively. Default: ${defaults.firstSensorId}`)
  )
}

/**
 * Rewrites one terminal line at most once a second with the totals and the rate of the last
 * interval. Only used when stderr is a terminal, so logs and pipes get no carriage returns.
 */
const writeProgressLine = () => {
  let last = { readings: 0, seconds: 0 }
  return (progress: SimulatorSummary) =>
    Effect.sync(() => {
      if (progress.seconds - last.seconds < 1) return
      const rate = (progress.readings - last.readings) / (progress.seconds - last.seconds)
      last = { readings: progress.readings, seconds: progress.seconds }
      process.stderr.write(
        `\r${progress.readings} readings in ${progress.messages} messages, ${Math.round(rate)} readings/s, ${progress.seconds.toFixed(0)} s`
      )
    })
}

/** `sensor-logger simulate`: a device fleet producing the original message format to `KAFKA_BROKERS`. */
export const simulateCommand = Command.make("simulate", options, (args) =>
  Effect.gen(function*() {
    const simulatorOptions = {
      sensors: args.sensors,
      rate: args.rate,
      readingsPerMessage: args.perMessage,
      metrics: args.metrics,
      count: Option.getOrUndefined(args.count),
      duration: Option.getOrUndefined(Option.map(args.duration, Duration.seconds)),
      seed: args.seed,
      firstSensorId: args.firstSensorId,
      onProgress: process.stderr.isTTY ? writeProgressLine() : undefined
    }
    // Before connecting, so a bad option is reported even when no broker is running.
    yield* validateSimulatorOptions(simulatorOptions)
    yield* validateSettings(commandSettings.tools(serviceNames.simulator))
    const summary = yield* runSimulator(simulatorOptions).pipe(
      Effect.provide(KafkaProducer.layer),
      Effect.provide(KafkaForTools),
      Effect.provide(TracingLive(serviceNames.simulator))
    )
    if (process.stderr.isTTY) process.stderr.write("\n")
    yield* Console.log(
      `Produced ${summary.readings} readings in ${summary.messages} messages in ${summary.seconds.toFixed(1)} s`
    )
  })
).pipe(Command.withDescription("Simulate a fleet of sensors producing readings to Kafka"))

