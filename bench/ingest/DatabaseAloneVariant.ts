/**
 * The database alone: the backlog's rows generated in memory and written with the ingest job's
 * write method (`unnest` upserts of `INGEST_BATCH_MAX_ROWS` rows), without Kafka or JSON. It is
 * the upper bound for every consumer.
 */
import { type BacklogShape, messageCount, messageReadings } from "./Backlog.ts"
import { type Columns, countRows, insertRows, openBenchDatabase, resolveMetricIds, timescaledbVersion } from "./BenchDatabase.ts"
import type { BenchSettings } from "./BenchSettings.ts"
import { type PlainReading, sliceColumns, toColumns } from "./HandWrittenVariant.ts"
import { startMeter, type VariantResult } from "./VariantResult.ts"

export const runDatabaseAloneVariant = async (shape: BacklogShape, settings: BenchSettings): Promise<VariantResult> => {
  const database = await openBenchDatabase(settings.databaseUrl, settings.concurrency)
  const cache = await resolveMetricIds(database.client, shape.metrics)
  // Rows are prepared before the clock starts, so only the writes are measured.
  const readingsPerStatement = Math.max(1, Math.floor(settings.maxRows / shape.metrics.length))
  const statements: Array<Array<PlainReading>> = [[]]
  for (let index = 0; index < messageCount(shape); index++) {
    for (const item of messageReadings(shape, index)) {
      const { ts, sensor_id: sensorId, ...metrics } = item
      let current = statements[statements.length - 1]!
      if (current.length >= readingsPerStatement) {
        current = []
        statements.push(current)
      }
      current.push({ micros: ts! * 1e6, sensorId: sensorId!, metrics: Object.entries(metrics) })
    }
  }
  const prepared: Array<Columns> = []
  for (const readings of statements) prepared.push(...sliceColumns(await toColumns(database.client, cache, readings), settings.maxRows))

  const meter = startMeter()
  const started = Date.now()
  // One statement at a time per connection, as many connections as the pipeline's concurrency.
  let next = 0
  const worker = async () => {
    while (next < prepared.length) {
      const columns = prepared[next++]!
      await insertRows(database.client, columns)
    }
  }
  await Promise.all(Array.from({ length: database.mode === "server" ? settings.concurrency : 1 }, worker))
  const seconds = (Date.now() - started) / 1000
  const figures = meter.stop()
  const rows = await countRows(database.client)
  const timescaledb = await timescaledbVersion(database.client)
  await database.close()
  return { variant: "database-alone", readings: shape.readings, rows, seconds, ...figures, timescaledb, database: database.mode }
}
