/**
 * The design of the original service: one message at a time (`eachMessage`), one `insert …
 * values` statement for its readings, and an offset commit after every message. It handles only
 * the first `naiveMessages` messages, because the whole backlog would take hours; the rate over
 * them is what is compared.
 */
import { Kafka, logLevel } from "kafkajs"
import { countRows, openBenchDatabase, timescaledbVersion } from "./BenchDatabase.ts"
import type { BenchSettings } from "./BenchSettings.ts"
import { decodePlain, toColumns } from "./HandWrittenVariant.ts"
import { startMeter, type VariantResult } from "./VariantResult.ts"

export const runNaiveVariant = async (settings: BenchSettings): Promise<VariantResult> => {
  const database = await openBenchDatabase(settings.databaseUrl, 1)
  const kafka = new Kafka({ brokers: [...settings.brokers], clientId: "bench-naive", logLevel: logLevel.WARN })
  const consumer = kafka.consumer({ groupId: `${settings.topic}.naive` })
  const meter = startMeter()
  const cache = new Map<string, number>()
  let messages = 0
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
    eachMessage: async ({ topic, partition, message }) => {
      if (messages >= settings.naiveMessages) return
      if (firstFetch === 0) {
        firstFetch = Date.now()
        meter.markStart()
      }
      const decoded = decodePlain(message.value)
      const columns = await toColumns(database.client, cache, decoded)
      if (columns.times.length > 0) {
        const placeholders = columns.times.map((_, row) =>
          `(timestamptz 'epoch' + $${row * 4 + 1}::int8 * interval '1 microsecond', $${row * 4 + 2}::int8, $${row * 4 + 3}::int4, $${row * 4 + 4}::float8)`
        )
        const parameters = columns.times.flatMap((time, row) => [time, columns.sensorIds[row], columns.metricIds[row], columns.values[row]])
        await database.client.query(
          `insert into sensor_data (time, sensor_id, metric_id, value) values ${placeholders.join(", ")}
           on conflict (sensor_id, metric_id, time) do update set value = excluded.value`,
          parameters
        )
      }
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      lastCommit = Date.now()
      messages += 1
      readings += decoded.length
      if (messages >= settings.naiveMessages) resolveDone()
    }
  })
  await done
  const figures = meter.stop()
  await consumer.disconnect()
  const rows = await countRows(database.client)
  const timescaledb = await timescaledbVersion(database.client)
  await database.close()
  return { variant: "naive", readings, rows, seconds: (lastCommit - firstFetch) / 1000, ...figures, timescaledb, database: database.mode }
}
