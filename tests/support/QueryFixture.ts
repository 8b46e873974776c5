import { Effect, Layer, ManagedRuntime } from "effect"
import { StorageMaintenance } from "../../src/ingest/StorageMaintenance.ts"
import { awaitRows, pipelineLayer, produce, queryClient, TestDatabase, type TestNames, uniqueNames } from "./TestPipeline.ts"

/** One reading as a device sends it, with `ts` as Unix seconds or an ISO-8601 string. */
export interface DeviceReading {
  readonly ts: number | string
  readonly sensor_id: number
  readonly [metric: string]: number | string
}

/** One stored value, as the tests compute expectations from: time in microseconds. */
export interface StoredValue {
  readonly timeMicros: number
  readonly sensorId: number
  readonly metric: string
  readonly value: number
}

/** Parses a device `ts` (Unix seconds, or ISO-8601 with up to six fraction digits) into microseconds. */
export const tsToMicros = (ts: number | string): number => {
  if (typeof ts === "number") return Math.round(ts * 1e6)
  const match = /^(.*?)(?:\.(\d{1,6}))?Z$/.exec(ts)!
  return Date.parse(`${match[1]}Z`) * 1000 + Number((match[2] ?? "").padEnd(6, "0"))
}

/** The stored values of `readings`: one per metric field. */
export const storedValues = (readings: ReadonlyArray<DeviceReading>): Array<StoredValue> =>
  readings.flatMap((reading) =>
    Object.entries(reading).flatMap(([key, value]) =>
      key === "ts" || key === "sensor_id" || typeof value !== "number"
        ? []
        : [{ timeMicros: tsToMicros(reading.ts), sensorId: reading.sensor_id, metric: key, value }]
    )
  )

/** A running pipeline for a test file: ingest job, query service, and an embedded database. */
export interface QueryPipeline {
  readonly names: TestNames
  readonly run: <A, E>(effect: Effect.Effect<A, E, any>) => Promise<A>
  readonly client: Effect.Effect.Success<typeof queryClient>
  /** Produces readings to the readings topic, 200 a record, and waits until `sensor_data` has `expectedRows` rows. */
  readonly write: (readings: ReadonlyArray<DeviceReading>, expectedRows: number) => Promise<void>
  /** Produces sensor metadata records. */
  readonly describeSensors: (sensors: ReadonlyArray<{ id: number; type?: string; location?: string }>) => Promise<void>
  /** Runs the storage maintenance once: refreshes the read models, then compression and retention. */
  readonly refresh: () => Promise<void>
  readonly dispose: () => Promise<void>
}

/**
 * Starts the pipeline with the in-process refresher off, so a test decides when the read models
 * catch up. `extra` adds settings.
 */
export const startQueryPipeline = async (label: string, extra: Record<string, string> = {}): Promise<QueryPipeline> => {
  const names = uniqueNames(label)
  const runtime = ManagedRuntime.make(
    pipelineLayer(names, TestDatabase, { READ_MODEL_REFRESH_INTERVAL_MS: "0", ...extra }) as Layer.Layer<any, any, never>
  )
  const run = <A, E>(effect: Effect.Effect<A, E, any>) => runtime.runPromise(effect as Effect.Effect<A, E, never>)
  const client = await run(queryClient)
  return {
    names,
    run,
    client,
    write: async (readings, expectedRows) => {
      const messages = []
      for (let index = 0; index < readings.length; index += 200) {
        const slice = readings.slice(index, index + 200)
        messages.push({ key: String(slice[0]!.sensor_id), value: JSON.stringify(slice) })
      }
      await run(produce(names.readingsTopic, messages))
      await run(awaitRows(expectedRows))
    },
    describeSensors: async (sensors) => {
      await run(produce(names.sensorsTopic, sensors.map((sensor) => ({ key: String(sensor.id), value: JSON.stringify(sensor) }))))
    },
    refresh: () => run(Effect.flatMap(StorageMaintenance, (maintenance) => maintenance.runOnce)),
    dispose: () => runtime.dispose()
  }
}

/**
 * A plain request of `path` on the query server, with `method` (GET by default), returning the
 * status, the content type, the `Allow` header (empty when absent) and the body text.
 */
export const fetchText = (pipeline: QueryPipeline, path: string, headers: Record<string, string> = {}, method = "GET") =>
  pipeline.run(Effect.gen(function*() {
    const { serverUrl } = yield* Effect.promise(() => import("./TestPipeline.ts"))
    const baseUrl = yield* serverUrl
    return yield* Effect.promise(async () => {
      const response = await fetch(`${baseUrl}${path}`, { headers, method })
      return {
        status: response.status,
        contentType: response.headers.get("content-type") ?? "",
        allow: response.headers.get("allow") ?? "",
        text: await response.text()
      }
    })
  }))
