import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Logger, Stream } from "effect"
import { Kafka, logLevel } from "kafkajs"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { inject } from "vitest"
import { formatEpochMicros } from "../../src/domain/Timestamp.ts"
import { KafkaAdmin } from "../../src/runtime/kafka/KafkaAdmin.ts"
import { KafkaClient } from "../../src/runtime/kafka/KafkaClient.ts"
import { KafkaProducer } from "../../src/runtime/kafka/KafkaProducer.ts"
import { readCsvFile } from "../../src/tools/replay/Csv.ts"
import { replayCsv, type ReplayOptionsInput, ReplayStoppedAtInvalidRow } from "../../src/tools/replay/Replay.ts"
import { makeTimestampParser, parseTimeZone } from "../../src/tools/replay/TimeColumn.ts"

/** A temporary directory, removed with the scope. */
const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "replay-test-"))),
  (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
)

/** Writes `text` to a CSV file in a temporary directory and returns its path. */
const csvFile = (text: string) =>
  Effect.map(tempDirectory, (directory) => {
    const path = join(directory, "data.csv")
    writeFileSync(path, text)
    return path
  })

/** Creates a producer that records each `send` call instead of contacting a broker. */
const recordingProducer = () => {
  const calls: Array<{ topic: string; messages: Array<{ key: string; value: string }> }> = []
  const layer = Layer.succeed(KafkaProducer, {
    send: (topic, messages) =>
      Effect.sync(() => {
        calls.push({ topic, messages: messages.map((message) => ({ key: String(message.key), value: String(message.value) })) })
        return []
      })
  })
  return { calls, layer }
}

const sampleCsv = [
  "time,sensor,Temperature,cpu load,note",
  "2022-03-04T15:55:07Z,1,30,20,a",
  "2022-03-04T15:55:08.5Z,2,31.5,,b",
  '2022-03-04T15:55:09Z,1,NA,21,"c, d"',
  "2022-03-04T15:55:10Z,1,32,22,e",
  "2022-03-04T15:55:11Z,2,x,,f",
  ""
].join("\r\n")

const sampleOptions = (file: string, topic?: string): ReplayOptionsInput => ({
  file,
  columns: ["Temperature=temperature", "cpu load=cpu"],
  timeColumn: "time",
  sensorIdColumn: "sensor",
  perMessage: 2,
  ...(topic === undefined ? {} : { topic })
})

/** The messages of `sampleCsv` with `perMessage: 2`, in the order they are sent. */
const sampleMessages = [
  {
    key: "1",
    value: `[{"ts":1646409307,"sensor_id":1,"temperature":30,"cpu":20},{"ts":1646409309,"sensor_id":1,"cpu":21}]`
  },
  { key: "2", value: `[{"ts":1646409308.5,"sensor_id":2,"temperature":31.5}]` },
  { key: "1", value: `[{"ts":1646409310,"sensor_id":1,"temperature":32,"cpu":22}]` }
]

describe("replayCsv", () => {
  it.scoped("builds messages in the original format", () =>
    Effect.gen(function*() {
      const file = yield* csvFile(sampleCsv)
      const producer = recordingProducer()
      const summary = yield* replayCsv(sampleOptions(file)).pipe(Effect.provide(producer.layer))

      expect(producer.calls).toHaveLength(1)
      expect(producer.calls[0]?.topic).toBe("logger.sensor.ts")
      expect(producer.calls[0]?.messages).toEqual(sampleMessages)
      expect(summary).toEqual({
        rows: 5,
        readings: 4,
        messages: 3,
        skippedCells: 4,
        invalidRows: 0,
        firstTs: 1646409307_000000,
        lastTs: 1646409310_000000,
        seconds: 0
      })
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("takes every numeric column when no mapping is given", () =>
    Effect.gen(function*() {
      const file = yield* csvFile(
        [
          '"date","Temperature","Label","Occupancy"',
          '"1","2015-02-02 14:19:00",23.7,"hall",1',
          '"2","2015-02-02 14:20:00",,"hall",0',
          '"3","2015-02-02 14:21:00.250",23.718,"NA",0'
        ].join("\n")
      )
      const producer = recordingProducer()
      const summary = yield* replayCsv({
        file,
        timeFormat: "%Y-%m-%d %H:%M:%S",
        timeZone: "+01:00",
        sensorId: 7
      }).pipe(Effect.either, Effect.provide(producer.layer))
      // The third row has fractional seconds, which the pattern does not allow.
      expect(Either.isLeft(summary)).toBe(true)
      if (Either.isLeft(summary)) {
        expect(summary.left.message).toContain(
          `${file}, line 4: invalid timestamp "2015-02-02 14:21:00.250" for time format "%Y-%m-%d %H:%M:%S" in time zone +01:00: ` +
            'the value does not match the pattern "%Y-%m-%d %H:%M:%S". 2 rows before it were sent as 2 readings in 1 message.'
        )
      }

      const fractional = yield* replayCsv({
        file,
        timeFormat: "iso",
        timeZone: "+01:00",
        sensorId: 7
      }).pipe(Effect.provide(producer.layer))
      expect(fractional.readings).toBe(3)
      expect(fractional.skippedCells).toBe(1)
      expect(producer.calls.at(-1)?.messages).toEqual([
        {
          key: "7",
          value: `[{"ts":1422883140,"sensor_id":7,"Temperature":23.7,"Occupancy":1},` +
            `{"ts":1422883200,"sensor_id":7,"Occupancy":0},` +
            `{"ts":1422883260.25,"sensor_id":7,"Temperature":23.718,"Occupancy":0}]`
        }
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("sends messagesPerSend messages per call", () =>
    Effect.gen(function*() {
      const rows = Array.from({ length: 7 }, (_, index) => `${1646409300 + index},${index}`)
      const file = yield* csvFile(["ts,value", ...rows].join("\n"))
      const producer = recordingProducer()
      const summary = yield* replayCsv({
        file,
        timeColumn: "ts",
        timeFormat: "unix",
        sensorId: 3,
        perMessage: 1,
        messagesPerSend: 3
      }).pipe(Effect.provide(producer.layer))
      expect(producer.calls.map((call) => call.messages.length)).toEqual([3, 3, 1])
      expect(summary.messages).toBe(7)
      expect(producer.calls[2]?.messages[0]?.value).toBe(`[{"ts":1646409306,"sensor_id":3,"value":6}]`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.live("spaces sends to the rate limit", () =>
    Effect.gen(function*() {
      const rows = Array.from({ length: 10 }, (_, index) => `${1646409300 + index},${index}`)
      const file = yield* csvFile(["ts,value", ...rows].join("\n"))
      const producer = recordingProducer()
      const summary = yield* replayCsv({ file, timeColumn: "ts", timeFormat: "unix", sensorId: 3, perMessage: 1, rate: 5 }).pipe(
        Effect.provide(producer.layer)
      )
      // 5 readings a second and 1 reading a message: sends of 5 messages, the second one second after the first.
      expect(producer.calls.map((call) => call.messages.length)).toEqual([5, 5])
      expect(summary.seconds).toBeGreaterThanOrEqual(0.99)
      expect(summary.seconds).toBeLessThan(5)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  it.scoped.each([
    [
      { columns: ["Humidity=humidity"] },
      'the column "Humidity" is not in the header (line 1); the columns are "time", "sensor", "Temperature", "cpu load", "note"'
    ],
    [{ timeColumn: "date" }, 'the time column "date" is not in the header'],
    [{ sensorIdColumn: "device" }, 'the sensor id column "device" is not in the header'],
    [{ columns: ["time=when"] }, 'the column "time" is the time or sensor id column and cannot also be a metric'],
    [{ sensorId: 1 }, "give either a fixed sensor id (sensorId, --sensor-id) or the column that contains it (sensorIdColumn, --sensor-id-column)"],
    [{ columns: ["Temperature=t", "cpu load=t"] }, "several columns map to the metric t"],
    [{ columns: ["Temperature=sensor_id"] }, "ts and sensor_id are fields of every reading, not metric names"],
    [{ columns: ["Temperature=1st"] }, "columns.0.metric"],
    [{ columns: ["=temperature"] }, 'invalid column mapping "=temperature": expected CSV=metric'],
    [{ perMessage: 0 }, "perMessage: Expected a positive number"],
    [{ topic: "a topic" }, "a Kafka topic name is 1 to 249 letters, digits"],
    [{ timeZone: "Mars/Base" }, 'invalid time zone "Mars/Base"'],
    [{ timeFormat: "%Q" }, 'invalid time format "%Q": unsupported directive %Q']
  ] as const)("rejects %j", ([override, expected]) =>
    Effect.gen(function*() {
      const file = yield* csvFile(sampleCsv)
      const producer = recordingProducer()
      const error = yield* replayCsv({ ...sampleOptions(file), ...override }).pipe(
        Effect.flip,
        Effect.provide(producer.layer)
      )
      expect(error.message).toContain(expected)
      expect(producer.calls).toEqual([])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("rejects a numeric column that is not a metric name", () =>
    Effect.gen(function*() {
      const file = yield* csvFile("date,CO2 (ppm),Temperature\n2022-03-04T15:55:07Z,400,20\n")
      const producer = recordingProducer()
      const error = yield* replayCsv({ file, sensorId: 1 }).pipe(Effect.flip, Effect.provide(producer.layer))
      expect(error._tag).toBe("ReplayColumnError")
      expect(error.message).toContain('the numeric columns "CO2 (ppm)" are not valid metric names')
      expect(error.message).toContain('"CO2 (ppm)=CO2_ppm_"')
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("rejects an invalid sensor id cell", () =>
    Effect.gen(function*() {
      const file = yield* csvFile("time,sensor,v\n2022-03-04T15:55:07Z,1,1\n2022-03-04T15:55:08Z,-2,1\n")
      const producer = recordingProducer()
      const error = yield* replayCsv({ file, timeColumn: "time", sensorIdColumn: "sensor" }).pipe(
        Effect.flip,
        Effect.provide(producer.layer)
      )
      expect(error.message).toBe(
        `Replay stopped at an invalid row: ${file}, line 3: invalid sensor id "-2" in column "sensor": expected a non-negative integer. ` +
          "1 row before it was sent as 1 reading in 1 message. " +
          "Fix or remove the row and replay the rows after it, or pass --skip-invalid to skip invalid rows"
      )
      expect(producer.calls.flatMap((call) => call.messages.map((message) => message.value))).toEqual([
        `[{"ts":1646409307,"sensor_id":1,"v":1}]`
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("sends the rows before a CSV syntax error", () =>
    Effect.gen(function*() {
      const file = yield* csvFile('ts,value\n1646409300,1\n1646409301,2\n1646409302,"3\n1646409303,4\n')
      const producer = recordingProducer()
      const error = yield* replayCsv({ file, timeColumn: "ts", timeFormat: "unix", sensorId: 3, perMessage: 5, skipInvalid: true }).pipe(
        Effect.flip,
        Effect.provide(producer.layer)
      )
      expect(error._tag).toBe("ReplayStoppedAtInvalidRow")
      expect(error.message).toContain(`${file}, line 4: the quoted field that starts on this line has no closing quote`)
      expect(error.message).toContain("2 rows before it were sent as 2 readings in 1 message.")
      expect(error.message).not.toContain("--skip-invalid")
      expect(producer.calls.flatMap((call) => call.messages.map((message) => message.value))).toEqual([
        `[{"ts":1646409300,"sensor_id":3,"value":1},{"ts":1646409301,"sensor_id":3,"value":2}]`
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("counts invalid rows past the logged ones", () =>
    Effect.gen(function*() {
      const rows = Array.from({ length: 30 }, (_, index) => (index % 2 === 0 ? `${1646409300 + index},${index}` : `bad,${index}`))
      const file = yield* csvFile(["ts,value", ...rows].join("\n"))
      const producer = recordingProducer()
      const summary = yield* replayCsv({ file, timeColumn: "ts", timeFormat: "unix", sensorId: 3, skipInvalid: true }).pipe(
        Effect.provide(producer.layer)
      )
      expect(summary.rows).toBe(30)
      expect(summary.invalidRows).toBe(15)
      expect(summary.readings).toBe(15)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("guesses numeric columns from well-formed rows", () =>
    Effect.gen(function*() {
      const file = yield* csvFile(
        [
          "date,sensor,temp,hum",
          "2026-03-02T00:00:00Z,300,1,10",
          "2026-03-02T00:01:00Z,300,2,oops,11",
          "2026-03-02T00:02:00Z,300,3,12"
        ].join("\n")
      )
      const skipping = recordingProducer()
      const summary = yield* replayCsv({ file, sensorIdColumn: "sensor", skipInvalid: true }).pipe(
        Effect.provide(skipping.layer)
      )
      expect(summary.invalidRows).toBe(1)
      expect(summary.readings).toBe(2)
      expect(skipping.calls.flatMap((call) => call.messages.map((message) => message.value))).toEqual([
        `[{"ts":1772409600,"sensor_id":300,"temp":1,"hum":10},{"ts":1772409720,"sensor_id":300,"temp":3,"hum":12}]`
      ])

      const stopping = recordingProducer()
      const error = yield* replayCsv({ file, sensorIdColumn: "sensor" }).pipe(Effect.flip, Effect.provide(stopping.layer))
      expect(error.message).toBe(
        `Replay stopped at an invalid row: ${file}, line 3: the row has 5 fields, expected 4 fields, one for each column ` +
          "of the header (line 1). 1 row before it was sent as 1 reading in 1 message. " +
          "Fix or remove the row and replay the rows after it, or pass --skip-invalid to skip invalid rows"
      )
      expect(stopping.calls.flatMap((call) => call.messages.map((message) => message.value))).toEqual([
        `[{"ts":1772409600,"sensor_id":300,"temp":1,"hum":10}]`
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("reports a first row with an extra field", () =>
    Effect.gen(function*() {
      const file = yield* csvFile(
        [
          "date,sensor,temp",
          "2026-03-03T00:00:00Z,301,1,junk",
          "2026-03-03T00:01:00Z,301,2",
          "2026-03-03T00:02:00Z,301,3"
        ].join("\n")
      )
      const stopping = recordingProducer()
      const error = yield* replayCsv({ file, sensorIdColumn: "sensor" }).pipe(Effect.flip, Effect.provide(stopping.layer))
      expect(error.message).toContain(
        `${file}, line 2: the row has 4 fields, expected 3 fields, one for each column of the header (line 1). ` +
          "0 rows before it were sent as 0 readings in 0 messages."
      )
      expect(stopping.calls).toEqual([])

      const skipping = recordingProducer()
      const summary = yield* replayCsv({ file, sensorIdColumn: "sensor", skipInvalid: true }).pipe(
        Effect.provide(skipping.layer)
      )
      expect(summary.invalidRows).toBe(1)
      expect(skipping.calls.flatMap((call) => call.messages.map((message) => message.value))).toEqual([
        `[{"ts":1772496060,"sensor_id":301,"temp":2},{"ts":1772496120,"sensor_id":301,"temp":3}]`
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("counts skipped rows before a syntax error", () =>
    Effect.gen(function*() {
      const bad = Array.from({ length: 12 }, (_, index) => `bad,${index}`)
      const file = yield* csvFile(["ts,value", "1646409300,1", ...bad, '1646409302,"3', "1646409303,4"].join("\n"))
      const producer = recordingProducer()
      const error = yield* replayCsv({ file, timeColumn: "ts", timeFormat: "unix", sensorId: 3, skipInvalid: true }).pipe(
        Effect.flip,
        Effect.provide(producer.layer)
      )
      expect(error._tag).toBe("ReplayStoppedAtInvalidRow")
      if (error._tag !== "ReplayStoppedAtInvalidRow") return
      expect(error.rowsSent).toBe(1)
      expect(error.rowsSkipped).toBe(12)
      expect(error.message).toContain(
        `${file}, line 15: the quoted field that starts on this line has no closing quote. ` +
          "1 row before it was sent as 1 reading in 1 message, and 12 invalid rows were skipped. "
      )
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped.each([10, 11])("logs %i skipped invalid rows", (invalid) =>
    Effect.gen(function*() {
      const bad = Array.from({ length: invalid }, (_, index) => `bad,${index}`)
      const file = yield* csvFile(["ts,value", "1646409300,1", ...bad, "1646409301,2"].join("\n"))
      const producer = recordingProducer()
      const messages: Array<string> = []
      const logger = Logger.make(({ message }) => {
        messages.push(String(message))
      })
      const summary = yield* replayCsv({ file, timeColumn: "ts", timeFormat: "unix", sensorId: 3, skipInvalid: true }).pipe(
        Effect.provide(producer.layer),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      expect(summary.invalidRows).toBe(invalid)
      expect(messages.filter((message) => message === "Invalid row skipped")).toHaveLength(10)
      const notes = messages.filter((message) => message.includes("further invalid rows"))
      expect(notes).toHaveLength(invalid > 10 ? 1 : 0)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.scoped("rejects a missing file", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const producer = recordingProducer()
      const error = yield* replayCsv({ file: join(directory, "absent.csv"), sensorId: 1 }).pipe(
        Effect.flip,
        Effect.provide(producer.layer)
      )
      expect(error._tag).toBe("SystemError")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("replayCsv against Kafka", () => {
  const brokers = () => inject("kafkaBrokers").split(",")
  const clientLayer = Layer.suspend(() => KafkaClient.layer({ brokers: brokers(), clientId: "replay-test" }))

  /** Reads `count` records of `topic` from the beginning, with their partition and offset. */
  const consume = (topic: string, count: number) =>
    Effect.acquireUseRelease(
      Effect.promise(async () => {
        const kafka = new Kafka({ brokers: brokers(), clientId: "replay-test-consumer", logLevel: logLevel.NOTHING })
        const consumer = kafka.consumer({ groupId: `${topic}.check` })
        await consumer.connect()
        await consumer.subscribe({ topic, fromBeginning: true })
        return consumer
      }),
      (consumer) =>
        Effect.async<Array<{ partition: number; offset: string; key: string; value: string }>>((resume) => {
          const received: Array<{ partition: number; offset: string; key: string; value: string }> = []
          void consumer.run({
            eachMessage: async ({ partition, message }) => {
              received.push({
                partition,
                offset: message.offset,
                key: message.key?.toString() ?? "",
                value: message.value?.toString() ?? ""
              })
              if (received.length === count) resume(Effect.succeed(received))
            }
          })
        }).pipe(Effect.timeout("60 seconds")),
      (consumer) => Effect.promise(() => consumer.disconnect())
    )

  /** Sum over the partitions of the topic's high-water marks: the records ever written to it. */
  const recordCount = (topic: string) =>
    Effect.promise(async () => {
      const admin = new Kafka({ brokers: brokers(), clientId: "replay-test-admin", logLevel: logLevel.NOTHING }).admin()
      await admin.connect()
      try {
        const offsets = await admin.fetchTopicOffsets(topic)
        return offsets.reduce((total, partition) => total + Number(partition.high), 0)
      } finally {
        await admin.disconnect()
      }
    })

  it.live("sends the exact messages, keyed by sensor id", () =>
    Effect.gen(function*() {
      const topic = `test.replay.${process.pid}.${Date.now().toString(36)}`
      const admin = yield* KafkaAdmin
      yield* admin.ensureTopics([topic], 2)
      const file = yield* csvFile(sampleCsv)

      const summary = yield* replayCsv(sampleOptions(file, topic))
      expect(summary.rows).toBe(5)
      expect(summary.readings).toBe(4)
      expect(summary.messages).toBe(3)
      expect(summary.skippedCells).toBe(4)
      expect(formatEpochMicros(summary.firstTs ?? 0)).toBe("2022-03-04T15:55:07.000Z")
      expect(formatEpochMicros(summary.lastTs ?? 0)).toBe("2022-03-04T15:55:10.000Z")

      const received = yield* consume(topic, 3)
      expect(yield* recordCount(topic)).toBe(3)
      const byKey = (key: string) =>
        received
          .filter((record) => record.key === key)
          .sort((a, b) => Number(a.offset) - Number(b.offset))
      const sensor1 = byKey("1")
      const sensor2 = byKey("2")
      expect(sensor1.map((record) => record.value)).toEqual([sampleMessages[0]?.value, sampleMessages[2]?.value])
      expect(sensor2.map((record) => record.value)).toEqual([sampleMessages[1]?.value])
      expect(new Set(sensor1.map((record) => record.partition)).size).toBe(1)
      for (const record of received) {
        const readings = JSON.parse(record.value) as Array<{ ts: number; sensor_id: number }>
        expect(readings.every((reading) => String(reading.sensor_id) === record.key)).toBe(true)
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(KafkaProducer.layer, KafkaAdmin.layer).pipe(Layer.provide(clientLayer))),
      Effect.provide(NodeFileSystem.layer)
    ))
})

/** A CSV file whose lines 5, 7 and 8 are invalid: month 13, a negative sensor id and a missing field. */
const csvWithInvalidRows = [
  "date,sensor,Temperature",
  "2022-01-01 00:00:00,801,20",
  "2022-01-01 00:00:01,801,21",
  "2022-01-01 00:00:02,802,22",
  "2022-13-01 00:00:03,801,23",
  "2022-01-01 00:00:04,801,24",
  "2022-01-01 00:00:05,-1,25",
  "2022-01-01 00:00:06,801",
  "2022-01-01 00:00:07,802,27",
  ""
].join("\n")

const invalidRowsOptions = (file: string, topic: string, skipInvalid: boolean): ReplayOptionsInput => ({
  file,
  topic,
  columns: ["Temperature=temperature"],
  timeFormat: "%Y-%m-%d %H:%M:%S",
  sensorIdColumn: "sensor",
  perMessage: 2,
  skipInvalid
})

describe("replayCsv with invalid rows against Kafka", () => {
  const brokers = () => inject("kafkaBrokers").split(",")
  const clientLayer = Layer.suspend(() => KafkaClient.layer({ brokers: brokers(), clientId: "replay-invalid-test" }))

  /** Reads every record of `topic` from the beginning, after the replay has finished: its high-water marks bound the read. */
  const readTopic = (topic: string) =>
    Effect.promise(async () => {
      const kafka = new Kafka({ brokers: brokers(), clientId: "replay-invalid-test-reader", logLevel: logLevel.NOTHING })
      const admin = kafka.admin()
      await admin.connect()
      const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect())
      const total = offsets.reduce((sum, partition) => sum + Number(partition.high), 0)
      const consumer = kafka.consumer({ groupId: `${topic}.check` })
      await consumer.connect()
      try {
        await consumer.subscribe({ topic, fromBeginning: true })
        const received: Array<{ key: string; offset: number; value: string }> = []
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`read ${received.length} of ${total} records of ${topic}`)), 60_000)
          if (total === 0) resolve()
          void consumer.run({
            eachMessage: async ({ message }) => {
              received.push({ key: message.key?.toString() ?? "", offset: Number(message.offset), value: message.value?.toString() ?? "" })
              if (received.length === total) {
                clearTimeout(timer)
                resolve()
              }
            }
          })
        })
        return received.sort((a, b) => a.key.localeCompare(b.key) || a.offset - b.offset)
      } finally {
        await consumer.disconnect()
      }
    })

  const newTopic = (name: string) =>
    Effect.gen(function*() {
      const topic = `test.replay.${name}.${process.pid}.${Date.now().toString(36)}`
      const admin = yield* KafkaAdmin
      yield* admin.ensureTopics([topic], 1)
      return topic
    })

  it.live("sends the rows before an invalid row, then stops", () =>
    Effect.gen(function*() {
      const topic = yield* newTopic("stop")
      const file = yield* csvFile(csvWithInvalidRows)

      const error = yield* replayCsv(invalidRowsOptions(file, topic, false)).pipe(Effect.flip)
      expect(error).toBeInstanceOf(ReplayStoppedAtInvalidRow)
      if (!(error instanceof ReplayStoppedAtInvalidRow)) return
      expect(error.line).toBe(5)
      expect(error.rowsSent).toBe(3)
      expect(error.readingsSent).toBe(3)
      expect(error.messagesSent).toBe(2)
      expect(error.message).toBe(
        `Replay stopped at an invalid row: ${file}, line 5: invalid timestamp "2022-13-01 00:00:03" for time format ` +
          `"%Y-%m-%d %H:%M:%S" in time zone UTC: month 13 is out of range 1 to 12. ` +
          "3 rows before it were sent as 3 readings in 2 messages. " +
          "Fix or remove the row and replay the rows after it, or pass --skip-invalid to skip invalid rows"
      )

      const records = yield* readTopic(topic)
      expect(records.map(({ key, value }) => ({ key, value }))).toEqual([
        {
          key: "801",
          value: `[{"ts":1640995200,"sensor_id":801,"temperature":20},{"ts":1640995201,"sensor_id":801,"temperature":21}]`
        },
        { key: "802", value: `[{"ts":1640995202,"sensor_id":802,"temperature":22}]` }
      ])
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(KafkaProducer.layer, KafkaAdmin.layer).pipe(Layer.provide(clientLayer))),
      Effect.provide(NodeFileSystem.layer)
    ))

  it.live("skips and counts invalid rows with skipInvalid", () =>
    Effect.gen(function*() {
      const topic = yield* newTopic("skip")
      const file = yield* csvFile(csvWithInvalidRows)

      const summary = yield* replayCsv(invalidRowsOptions(file, topic, true))
      expect(summary.rows).toBe(8)
      expect(summary.invalidRows).toBe(3)
      expect(summary.readings).toBe(5)
      expect(summary.messages).toBe(3)

      const records = yield* readTopic(topic)
      expect(records.map(({ key, value }) => ({ key, value }))).toEqual([
        {
          key: "801",
          value: `[{"ts":1640995200,"sensor_id":801,"temperature":20},{"ts":1640995201,"sensor_id":801,"temperature":21}]`
        },
        { key: "801", value: `[{"ts":1640995204,"sensor_id":801,"temperature":24}]` },
        {
          key: "802",
          value: `[{"ts":1640995202,"sensor_id":802,"temperature":22},{"ts":1640995207,"sensor_id":802,"temperature":27}]`
        }
      ])
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(KafkaProducer.layer, KafkaAdmin.layer).pipe(Layer.provide(clientLayer))),
      Effect.provide(NodeFileSystem.layer)
    ))
})

const occupancyDirectory =
  process.env.OCCUPANCY_DATA_DIR ?? join(import.meta.dirname, "../../../shared/data/occupancy-uci")

describe("occupancy data set", () => {
  it.scoped("decodes every row of datatest.txt", (context) => {
    if (!existsSync(occupancyDirectory)) context.skip(`the occupancy data set is not at ${occupancyDirectory}`)
    return Effect.gen(function*() {
      const parse = Either.getOrThrow(
        makeTimestampParser("%Y-%m-%d %H:%M:%S", Either.getOrThrow(parseTimeZone("+01:00")))
      )
      const { header, rows } = yield* readCsvFile(join(occupancyDirectory, "datatest.txt"))
      expect(header.rowIndex).toBe(true)
      expect(header.columns).toEqual(["", "date", "Temperature", "Humidity", "Light", "CO2", "HumidityRatio", "Occupancy"])

      const instants = yield* rows.pipe(
        Stream.mapEffect((row) => parse(row.fields[1] ?? "", row.line)),
        Stream.runCollect,
        Effect.map(Chunk.toArray)
      )
      expect(instants).toHaveLength(2665)
      expect(formatEpochMicros(instants[0] ?? 0)).toBe("2015-02-02T13:19:00.000Z")
    }).pipe(Effect.provide(NodeFileSystem.layer))
  })

  it.scoped("replays datatest2.txt with unquoted dates", (context) => {
    if (!existsSync(occupancyDirectory)) context.skip(`the occupancy data set is not at ${occupancyDirectory}`)
    return Effect.gen(function*() {
      const producer = recordingProducer()
      const summary = yield* replayCsv({
        file: join(occupancyDirectory, "datatest2.txt"),
        timeFormat: "%Y-%m-%d %H:%M:%S",
        timeZone: "+01:00",
        sensorId: 1
      }).pipe(Effect.provide(producer.layer))
      expect(summary.rows).toBe(9752)
      expect(summary.readings).toBe(9752)
      expect(summary.skippedCells).toBe(0)
      expect(formatEpochMicros(summary.firstTs ?? 0)).toBe("2015-02-11T13:48:00.000Z")
      const firstReading = JSON.parse(producer.calls[0]?.messages[0]?.value ?? "[]")[0]
      expect(Object.keys(firstReading)).toEqual([
        "ts",
        "sensor_id",
        "Temperature",
        "Humidity",
        "Light",
        "CO2",
        "HumidityRatio",
        "Occupancy"
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer))
  })
})
