/**
 * Runs `sensor-logger all-in-one` on Node.js and on Deno against the same Kafka backlog. For each
 * run it prints the seconds the embedded database took to open and the seconds from spawning the
 * process to its "Listening on" and "Ingest job started" lines. It also prints the readings per
 * second from joining the consumer group until every offset is committed, and the resident memory
 * (Linux /proc) when ready and at its peak.
 *
 *   npx tsx bench/runtime-comparison.ts [--readings 200000] [--runs 3]
 *
 * It starts its own local Kafka broker (Java 17 and Maven, as for the tests), fills
 * logger.sensor.ts (3 partitions) once with `sensor-logger simulate`, then runs each runtime
 * `--runs` times, alternating, each with a new consumer group and a new embedded database on disk.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Kafka, logLevel } from "kafkajs"
import { findFreePorts, startLocalKafka } from "../infra/kafka/LocalKafka.ts"

const root = join(import.meta.dirname, "..")
const denoBinary = join(root, "node_modules/deno/deno")
const readingsTopic = "logger.sensor.ts"
const sensorsTopic = "logger.sensor.instance"

const { values } = parseArgs({
  options: { readings: { type: "string", default: "200000" }, runs: { type: "string", default: "3" } },
  strict: true
})
const readings = Number(values.readings)
const runs = Number(values.runs)
if (!Number.isSafeInteger(readings) || readings < 1000) throw new Error(`--readings must be an integer of at least 1000, got ${values.readings}`)
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`)

const runtimes = {
  node: [process.execPath, "bin/sensor-logger.js", "all-in-one"],
  deno: [denoBinary, "run", "--allow-all", "src/bin.ts", "all-in-one"]
} as const
type Runtime = keyof typeof runtimes

interface RunResult {
  readonly runtime: Runtime
  readonly run: number
  /** Time the embedded database took to open, from its own log line: a new database on disk each run. */
  readonly databaseOpenSeconds: number
  readonly listeningSeconds: number
  readonly startedSeconds: number
  readonly ingestSeconds: number
  readonly readingsPerSecond: number
  readonly readyRssMiB: number
  readonly peakRssMiB: number
  readonly exitCode: number | null
  /** One-minute load average when the run ended; other work on the machine slows the runs down. */
  readonly loadAverage: number
}

/** Returns VmRSS or VmHWM of `pid` in MiB from /proc (Linux only), or 0 when the process has exited. */
const memoryMiB = (pid: number, field: "VmRSS" | "VmHWM"): number => {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8")
  } catch {
    return 0
  }
  // An exiting process keeps its status file for a moment, without the Vm lines.
  const kib = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]
  return kib === undefined ? 0 : Number(kib) / 1024
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

const delay = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

const main = async () => {
  const kafkaDir = mkdtempSync(join(os.tmpdir(), "sensor-logger-bench-kafka-"))
  const broker = await startLocalKafka({ dataDir: kafkaDir })
  const brokers = broker.brokers.join(",")
  const kafka = new Kafka({ brokers: [...broker.brokers], clientId: "runtime-comparison", logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const results: Array<RunResult> = []
  try {
    await admin.createTopics({
      topics: [readingsTopic, sensorsTopic].map((topic) => ({ topic, numPartitions: 3 })),
      waitForLeaders: true
    })
    const sensors = 100
    const perMessage = 100
    console.log(`Filling ${readingsTopic} with ${readings} readings (${sensors} sensors, ${perMessage} a message)`)
    execFileSync(process.execPath, [
      "bin/sensor-logger.js", "simulate",
      "--sensors", String(sensors), "--count", String(readings), "--per-message", String(perMessage),
      // The simulator sends what falls due in 100 ms in one request, which has to stay under the
      // broker's 1 MiB message.max.bytes per partition: 2,000 readings of about 70 bytes do.
      "--rate", "20000", "--seed", "7"
    ], { cwd: root, env: { ...process.env, KAFKA_BROKERS: brokers, LOG_LEVEL: "warning" }, stdio: "inherit" })
    const endOffsets = (await admin.fetchTopicOffsets(readingsTopic)).reduce((sum, partition) => sum + Number(partition.high), 0)

    for (let run = 1; run <= runs; run++) {
      const order: ReadonlyArray<Runtime> = run % 2 === 1 ? ["node", "deno"] : ["deno", "node"]
      for (const runtime of order) {
        results.push(await measureRun(runtime, run, { brokers, admin, endOffsets }))
        const last = results.at(-1)!
        console.log(JSON.stringify(last))
      }
    }
  } finally {
    await admin.disconnect()
    await broker.stop()
    rmSync(kafkaDir, { recursive: true, force: true })
  }
  printSummary(results)
}

const measureRun = async (
  runtime: Runtime,
  run: number,
  context: { readonly brokers: string; readonly admin: ReturnType<Kafka["admin"]>; readonly endOffsets: number }
): Promise<RunResult> => {
  const dataDir = mkdtempSync(join(os.tmpdir(), `sensor-logger-bench-${runtime}-`))
  const [port] = await findFreePorts(1)
  const groupId = `bench.${runtime}.${run}.${Date.now().toString(36)}`
  const [command, ...args] = runtimes[runtime]
  const spawned = performance.now()
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, KAFKA_BROKERS: context.brokers, KAFKA_GROUP_ID: groupId, DATA_DIR: dataDir, HTTP_PORT: String(port), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const seen = new Map<string, number>()
  const output: Array<string> = []
  const onData = (chunk: Buffer) => {
    const text = String(chunk)
    output.push(text)
    for (const marker of ["Listening on", "Joined consumer group", "Ingest job started"]) {
      if (!seen.has(marker) && text.includes(marker)) seen.set(marker, performance.now())
    }
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", onData)

  let peakRssMiB = 0
  const sampler = setInterval(() => {
    peakRssMiB = Math.max(peakRssMiB, memoryMiB(child.pid!, "VmRSS"))
  }, 100)
  try {
    const deadline = performance.now() + 600_000
    let readyRssMiB = Number.NaN
    let done: number | undefined
    while (done === undefined) {
      if (child.exitCode !== null) throw new Error(`${runtime} exited with ${child.exitCode}:\n${output.join("").slice(-3000)}`)
      if (performance.now() > deadline) throw new Error(`${runtime} timed out:\n${output.join("").slice(-3000)}`)
      if (seen.has("Ingest job started")) {
        if (Number.isNaN(readyRssMiB)) readyRssMiB = memoryMiB(child.pid!, "VmRSS")
        const [offsets] = await context.admin.fetchOffsets({ groupId, topics: [readingsTopic] })
        const committed = (offsets?.partitions ?? []).reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0)
        if (committed >= context.endOffsets) done = performance.now()
      }
      if (done === undefined) await delay(100)
    }
    peakRssMiB = Math.max(peakRssMiB, memoryMiB(child.pid!, "VmHWM"))
    child.kill("SIGINT")
    const exitCode = await exited(child)
    const joined = seen.get("Joined consumer group") ?? seen.get("Ingest job started")!
    const openMillis = Number(/openMillis=(\d+)/.exec(output.join(""))?.[1] ?? Number.NaN)
    return {
      runtime,
      run,
      databaseOpenSeconds: round(openMillis / 1000, 2),
      listeningSeconds: round((seen.get("Listening on")! - spawned) / 1000, 2),
      startedSeconds: round((seen.get("Ingest job started")! - spawned) / 1000, 2),
      ingestSeconds: round((done - joined) / 1000, 2),
      readingsPerSecond: Math.round(readings / ((done - joined) / 1000)),
      readyRssMiB: Math.round(readyRssMiB),
      peakRssMiB: Math.round(peakRssMiB),
      exitCode,
      loadAverage: round(os.loadavg()[0]!, 1)
    }
  } finally {
    clearInterval(sampler)
    if (child.exitCode === null) {
      child.kill("SIGKILL")
      await exited(child)
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const round = (value: number, digits: number) => Number(value.toFixed(digits))

const median = (numbers: ReadonlyArray<number>) => {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const printSummary = (results: ReadonlyArray<RunResult>) => {
  const denoVersion = execFileSync(denoBinary, ["--version"], { encoding: "utf8" }).split("\n")[0]
  console.log(`\nMachine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ` +
    `Node.js ${process.versions.node}, ${denoVersion}, load average ${os.loadavg().map((load) => load.toFixed(1)).join(" ")}`)
  console.log(`Medians over ${runs} runs of ${readings} readings:`)
  console.log("| runtime | database open, s | to Listening on, s | to Ingest job started, s | ingest, s | readings/s | RSS ready, MiB | RSS peak, MiB |")
  console.log("|---|---|---|---|---|---|---|---|")
  for (const runtime of Object.keys(runtimes) as Array<Runtime>) {
    const mine = results.filter((result) => result.runtime === runtime)
    const column = (pick: (result: RunResult) => number) => median(mine.map(pick))
    console.log(
      `| ${runtime} | ${column((r) => r.databaseOpenSeconds)} | ${column((r) => r.listeningSeconds)} | ${column((r) => r.startedSeconds)} | ${column((r) => r.ingestSeconds)} | ` +
        `${column((r) => r.readingsPerSecond)} | ${column((r) => r.readyRssMiB)} | ${column((r) => r.peakRssMiB)} |`
    )
  }
}

await main()
