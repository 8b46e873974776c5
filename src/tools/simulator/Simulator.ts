import { Data, Duration, Effect, Schema } from "effect"
import type { Message } from "kafkajs"
import { readingsTopic, sensorsTopic } from "../../domain/Message.ts"
import { MetricName } from "../../domain/MetricName.ts"
import { KafkaProducer } from "../../runtime/kafka/KafkaProducer.ts"

/** Size, metrics and reporting rate of the simulated fleet. */
export interface SimulatorOptions {
  readonly sensors: number
  /** Readings per second over the whole fleet. */
  readonly rate: number
  readonly readingsPerMessage: number
  readonly metrics: ReadonlyArray<MetricName>
  /** Stop after this many readings; unlimited when undefined. */
  readonly count?: number | undefined
  /** Stop after this long; unlimited when undefined. */
  readonly duration?: Duration.Duration | undefined
  /** Seed of the value generator; the same seed and options give the same values. */
  readonly seed: number
  readonly readingsTopic?: string | undefined
  readonly sensorsTopic?: string | undefined
  /** First sensor id; the fleet uses consecutive ids from here. */
  readonly firstSensorId?: number | undefined
  /** Called after each send with the totals so far, for progress output. */
  readonly onProgress?: ((progress: SimulatorSummary) => Effect.Effect<void>) | undefined
}

/** Totals of a simulator run. */
export interface SimulatorSummary {
  readonly readings: number
  readonly messages: number
  readonly seconds: number
}

/** Simulator options that cannot produce readings; `option` names the one at fault. */
export class InvalidSimulatorOptions extends Data.TaggedError("InvalidSimulatorOptions")<{
  readonly option: string
  readonly value: string
  readonly reason: string
}> {
  override get message(): string {
    return `invalid simulator option --${this.option} ${this.value}: ${this.reason}`
  }
}

/** Checks that `options` can produce readings; `runSimulator` calls it first, callers may call it before connecting. */
export const validateSimulatorOptions = (options: SimulatorOptions): Effect.Effect<void, InvalidSimulatorOptions> => {
  const invalid = (option: string, value: unknown, reason: string) =>
    Effect.fail(new InvalidSimulatorOptions({ option, value: String(value), reason }))
  if (!Number.isInteger(options.sensors) || options.sensors < 1) return invalid("sensors", options.sensors, "expected an integer of at least 1")
  if (!(options.rate > 0) || !Number.isFinite(options.rate)) return invalid("rate", options.rate, "expected readings per second above 0")
  if (!Number.isInteger(options.readingsPerMessage) || options.readingsPerMessage < 1) {
    return invalid("per-message", options.readingsPerMessage, "expected an integer of at least 1")
  }
  const reserved = options.metrics.find((metric) => metric === "ts" || metric === "sensor_id")
  if (reserved !== undefined) return invalid("metrics", reserved, "ts and sensor_id are the reading's own fields, not metrics")
  if (options.count !== undefined && (!Number.isInteger(options.count) || options.count < 0)) {
    return invalid("count", options.count, "expected an integer of at least 0")
  }
  return Effect.void
}

/** The original example's metrics. */
export const defaultMetrics: ReadonlyArray<MetricName> = ["temperature", "cpu"].map((name) => MetricName.make(name))

/** A small seeded generator (mulberry32): repeatable values without a dependency. */
const makeRandom = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const sensorTypes = ["thermo", "gateway", "edge-node"]
const locations = ["hall-a", "hall-b", "roof", "basement"]

/** Centre and spread of a metric's random walk; temperature in °C and cpu in percent, as in the original example. */
const metricShape = (name: string): { readonly centre: number; readonly step: number; readonly min: number; readonly max: number } =>
  name === "cpu"
    ? { centre: 20, step: 3, min: 0, max: 100 }
    : name === "temperature"
    ? { centre: 25, step: 0.3, min: -40, max: 85 }
    : { centre: 50, step: 1, min: 0, max: 100 }

const round2 = (value: number) => Math.round(value * 100) / 100

/**
 * Produces readings in the original format (`[{"ts", "sensor_id", <metric>...}]`, `ts` in Unix
 * seconds) and one metadata record per sensor on the sensors topic. Each sensor's values follow a
 * bounded random walk. Readings go out in ticks of 100 ms to keep to `rate`. A message contains
 * readings of one sensor and is keyed by its id, so its readings keep their order within a partition.
 */
export const runSimulator = Effect.fn("Simulator.run")(function*(options: SimulatorOptions) {
  yield* validateSimulatorOptions(options)
  const producer = yield* KafkaProducer
  const random = makeRandom(options.seed)
  const firstId = options.firstSensorId ?? 1
  const ids = Array.from({ length: options.sensors }, (_, index) => firstId + index)
  const values = ids.map(() => options.metrics.map((metric) => metricShape(metric).centre + (random() - 0.5) * 10))

  yield* producer.send(
    options.sensorsTopic ?? sensorsTopic,
    ids.map((id, index): Message => ({
      key: String(id),
      value: JSON.stringify({
        id,
        type: sensorTypes[index % sensorTypes.length],
        location: locations[index % locations.length]
      })
    }))
  )

  const started = Date.now()
  const deadline = options.duration === undefined ? Infinity : started + Duration.toMillis(options.duration)
  const limit = options.count ?? Infinity
  const tickMillis = 100
  // Each sensor's next instant is at least one step after its last, so no reading overwrites
  // another. The step is a whole second (the original format) while a sensor reports at most once
  // a second, and a number of milliseconds beyond that.
  const perSensorRate = options.rate / ids.length
  const stepMillis = perSensorRate <= 1 ? 1000 : Math.max(1, Math.floor(1000 / perSensorRate))
  const lastMillis = ids.map(() => Math.floor(started / 1000) * 1000 - stepMillis)
  let readings = 0
  let messages = 0
  let sensorCursor = 0

  while (readings < limit && Date.now() < deadline) {
    const due = Math.min(limit, Math.floor(((Date.now() - started + tickMillis) / 1000) * options.rate))
    const batch: Array<Message> = []
    while (readings < due) {
      const slot = sensorCursor % ids.length
      sensorCursor++
      const id = ids[slot]!
      const size = Math.min(options.readingsPerMessage, due - readings)
      const items = Array.from({ length: size }, () => {
        const now = Math.floor(Date.now() / stepMillis) * stepMillis
        const millis = Math.max(now, lastMillis[slot]! + stepMillis)
        lastMillis[slot] = millis
        const current = values[slot]!
        const item: Record<string, number> = { ts: millis / 1000, sensor_id: id }
        options.metrics.forEach((metric, index) => {
          const shape = metricShape(metric)
          const next = current[index]! + (random() - 0.5) * 2 * shape.step
          current[index] = Math.min(shape.max, Math.max(shape.min, next))
          item[metric] = round2(current[index]!)
        })
        return item
      })
      batch.push({ key: String(id), value: JSON.stringify(items) })
      readings += size
    }
    if (batch.length > 0) {
      // One trace per tick: the readings of a tick share its traceparent, and a run that lasts
      // for hours does not grow a single trace.
      yield* producer.send(options.readingsTopic ?? readingsTopic, batch).pipe(
        Effect.withSpan("Simulator.tick", { root: true, attributes: { messages: batch.length } })
      )
      messages += batch.length
      if (options.onProgress !== undefined) {
        yield* options.onProgress({ readings, messages, seconds: (Date.now() - started) / 1000 })
      }
    }
    yield* Effect.sleep(tickMillis)
  }
  return { readings, messages, seconds: (Date.now() - started) / 1000 } satisfies SimulatorSummary
})

/** Decodes the `--metrics` option: comma-separated metric names. */
export const MetricList = Schema.split(",").pipe(Schema.compose(Schema.NonEmptyArray(MetricName)))
