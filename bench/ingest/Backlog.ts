/**
 * The benchmark's backlog: a deterministic fleet whose messages are produced to Kafka once, then
 * consumed by every variant. The database-alone variant regenerates the same rows in memory.
 */
import { type Kafka, Partitioners } from "kafkajs"

export interface BacklogShape {
  readonly readings: number
  readonly readingsPerMessage: number
  readonly sensors: number
  readonly metrics: ReadonlyArray<string>
  /**
   * First reading's `ts`, Unix seconds. The parent picks it so that the backlog ends about now:
   * readings older than `STORAGE_COMPRESS_AFTER` would be compressed by the job's own storage
   * maintenance while they are written, which measured 2 to 3 times slower on the embedded database.
   */
  readonly firstTs: number
}

/** A `firstTs` for which the backlog's last readings are about one second old. */
export const recentFirstTs = (readings: number, sensors: number): number =>
  Math.floor(Date.now() / 1000) - Math.ceil(readings / sensors) - 1

/**
 * Builds one message's readings: message `index` belongs to sensor `index % sensors`, and a sensor's
 * readings are one second apart, so no two readings share a key.
 */
export const messageReadings = (shape: BacklogShape, index: number): Array<Record<string, number>> => {
  const sensorId = (index % shape.sensors) + 1
  const round = Math.floor(index / shape.sensors)
  const first = round * shape.readingsPerMessage
  const size = Math.min(shape.readingsPerMessage, shape.readings - index * shape.readingsPerMessage)
  const items: Array<Record<string, number>> = []
  for (let k = 0; k < size; k++) {
    const item: Record<string, number> = { ts: shape.firstTs + first + k, sensor_id: sensorId }
    shape.metrics.forEach((metric, m) => {
      item[metric] = 20 + (((index * 7_919 + k * 104_729 + m * 13) % 2_000) / 100)
    })
    items.push(item)
  }
  return items
}

export const messageCount = (shape: BacklogShape) => Math.ceil(shape.readings / shape.readingsPerMessage)

/** Creates `topic` with `partitions` partitions and produces the whole backlog to it; returns the bytes produced. */
export const produceBacklog = async (
  kafka: Kafka,
  topic: string,
  partitions: number,
  shape: BacklogShape,
  onProgress: (messages: number) => void
): Promise<number> => {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true })
  await admin.disconnect()

  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const total = messageCount(shape)
  const chunk = 5_000
  let bytes = 0
  try {
    for (let start = 0; start < total; start += chunk) {
      const messages = []
      for (let index = start; index < Math.min(total, start + chunk); index++) {
        const value = JSON.stringify(messageReadings(shape, index))
        bytes += value.length
        messages.push({ key: String((index % shape.sensors) + 1), value })
      }
      await producer.send({ topic, messages, acks: -1 })
      onProgress(Math.min(total, start + chunk))
    }
  } finally {
    await producer.disconnect()
  }
  return bytes
}
