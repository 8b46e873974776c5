/**
 * A consumer written directly against kafkajs and `pg`, without Effect: `eachBatch`, `JSON.parse`,
 * the same in-batch deduplication and `unnest` upsert as the ingest job, and a commit after each
 * batch. It is the figure the ingest job's layers are compared with.
 */
import { Kafka, logLevel } from "kafkajs"
import { seriesKey } from "../../src/ingest/RowEncoding.ts"
import type { BacklogShape } from "./Backlog.ts"
import { type Columns, countRows, insertRows, openBenchDatabase, type Queryable, resolveMetricIds, timescaledbVersion } from "./BenchDatabase.ts"
import type { BenchSettings } from "./BenchSettings.ts"
import { startMeter, type VariantResult } from "./VariantResult.ts"

/** A reading as the hand-written consumers decode it: `ts` converted to microseconds. */
export interface PlainReading {
  readonly micros: number
  readonly sensorId: number
  readonly metrics: ReadonlyArray<readonly [string, number]>
}

/**
 * Decodes one message of the original format with the checks a careful hand-written consumer
 * makes: a JSON array (or object) of readings, a numeric `ts` in seconds, an integer
 * `sensor_id` and finite metric values. Invalid readings are skipped.
 */
export const decodePlain = (value: Buffer | null): Array<PlainReading> => {
  if (value === null) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString("utf8"))
  } catch {
    return []
  }
  const items = Array.isArray(parsed) ? parsed : [parsed]
  const readings: Array<PlainReading> = []
  for (const item of items) {
    if (typeof item !== "object" || item === null) continue
    const { ts, sensor_id: sensorId, ...rest } = item as Record<string, unknown>
    if (typeof ts !== "number" || !Number.isFinite(ts) || !Number.isSafeInteger(sensorId)) continue
    const metrics: Array<readonly [string, number]> = []
    for (const name in rest) {
      const metric = rest[name]
      if (typeof metric === "number" && Number.isFinite(metric)) metrics.push([name, metric])
    }
    readings.push({ micros: Math.round(ts * 1e6), sensorId: sensorId as number, metrics })
  }
  return readings
}

/** Resolves metric ids through `cache` and builds deduplicated columns; a later reading of a key wins. */
export const toColumns = async (
  client: Queryable,
  cache: Map<string, number>,
  readings: ReadonlyArray<PlainReading>
): Promise<Columns> => {
  const unknown = new Set<string>()
  for (const reading of readings) for (const [name] of reading.metrics) if (!cache.has(name)) unknown.add(name)
  if (unknown.size > 0) for (const [name, id] of await resolveMetricIds(client, [...unknown])) cache.set(name, id)
  const columns: Columns = { times: [], sensorIds: [], metricIds: [], values: [] }
  // Keyed by series, then instant, with numbers as keys, as the ingest job does.
  const rowIndex = new Map<number | string, Map<number, number>>()
  for (const reading of readings) {
    for (const [name, value] of reading.metrics) {
      const metricId = cache.get(name)!
      const series = seriesKey(reading.sensorId, metricId)
      let byTime = rowIndex.get(series)
      if (byTime === undefined) rowIndex.set(series, byTime = new Map())
      const existing = byTime.get(reading.micros)
      if (existing !== undefined) {
        columns.values[existing] = value
        continue
      }
      byTime.set(reading.micros, columns.times.length)
      columns.times.push(reading.micros)
      columns.sensorIds.push(reading.sensorId)
      columns.metricIds.push(metricId)
      columns.values.push(value)
    }
  }
  return columns
}

/** Splits columns into statements of at most `maxRows` rows. */
export const sliceColumns = (columns: Columns, maxRows: number): Array<Columns> => {
  const slices: Array<Columns> = []
  for (let start = 0; start < columns.times.length; start += maxRows) {
    const end = start + maxRows
    slices.push({
      times: columns.times.slice(start, end),
      sensorIds: columns.sensorIds.slice(start, end),
      metricIds: columns.metricIds.slice(start, end),
      values: columns.values.slice(start, end)
    })
  }
  return slices
}

export const runHandWrittenVariant = async (shape: BacklogShape, settings: BenchSettings): Promise<VariantResult> => {
  const database = await openBenchDatabase(settings.databaseUrl, settings.concurrency)
  const kafka = new Kafka({ brokers: [...settings.brokers], clientId: "bench-hand-written", logLevel: logLevel.WARN })
  const consumer = kafka.consumer({
    groupId: `${settings.topic}.hand-written`,
    maxWaitTimeInMs: settings.fetchMaxWaitMillis,
    minBytes: settings.fetchMinBytes,
    maxBytesPerPartition: settings.fetchMaxBytes
  })
  const meter = startMeter()
  const cache = new Map<string, number>()
  let readings = 0
  let firstFetch = 0
  let lastCommit = 0
  let resolveDone!: () => void
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve
  })

  await consumer.connect()
  await consumer.subscribe({ topics: [settings.topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: settings.concurrency,
    eachBatch: async ({ batch }) => {
      if (batch.isEmpty()) return
      if (firstFetch === 0) {
        firstFetch = Date.now()
        meter.markStart()
      }
      const decoded: Array<PlainReading> = []
      for (const message of batch.messages) for (const reading of decodePlain(message.value)) decoded.push(reading)
      const columns = await toColumns(database.client, cache, decoded)
      for (const slice of sliceColumns(columns, settings.maxRows)) await insertRows(database.client, slice)
      const next = (BigInt(batch.lastOffset()) + 1n).toString()
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }])
      lastCommit = Date.now()
      readings += decoded.length
      if (readings >= shape.readings) resolveDone()
    }
  })
  await done
  const figures = meter.stop()
  await consumer.disconnect()
  const rows = await countRows(database.client)
  const timescaledb = await timescaledbVersion(database.client)
  await database.close()
  return {
    variant: "hand-written",
    readings,
    rows,
    seconds: (lastCommit - firstFetch) / 1000,
    ...figures,
    timescaledb,
    database: database.mode
  }
}
