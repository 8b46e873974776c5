/**
 * Query benchmark: loads readings into a database through the ingest job's writer (10 million
 * readings of temperature and cpu by default), refreshes the read models, starts
 * `sensor-logger query` as a child process on it, and measures four requests with a few
 * concurrent HTTP clients:
 *
 *   raw page        100 raw readings of one sensor, `/v1/readings`
 *   sensor day      one sensor's day in 1-minute buckets, `/v1/aggregates`
 *   30 days hourly  hourly averages of 100 sensors over 30 days, grouped by sensor
 *   latest 1,000    latest values of 1,000 sensors, `/v1/latest`
 *
 * It prints p50 and p99 latency, requests per second and the mean response size of each, with
 * the machine and settings. The database is the embedded TimescaleDB in `--data-dir` (kept, so
 * a second run skips the load), or the server of `DATABASE_URL`, which must be a scratch
 * database: the load adds to whatever it contains, and a table records the data set, so a second
 * run there skips the load too.
 *
 * Run: npm run bench:queries -- [--readings 10000000] [--sensors 1000] [--days 30]
 *      [--clients 4] [--seconds 10] [--data-dir DIR]
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Logger, Schedule } from "effect"
import { StorageMaintenance } from "../src/ingest/StorageMaintenance.ts"
import { SensorDataWriter } from "../src/ingest/SensorDataWriter.ts"
import { Database, embeddedDataDir } from "../src/runtime/database/Database.ts"
import { sqlErrorDetail } from "../src/runtime/database/SqlErrorDetail.ts"
import { runHttpLoad } from "./queries/HttpLoad.ts"
import { loadReadings, type QueryDataShape, readingInterval, startSeconds } from "./queries/LoadReadings.ts"

const { values: flags } = parseArgs({
  options: {
    "readings": { type: "string", default: "10000000" },
    "sensors": { type: "string", default: "1000" },
    "days": { type: "string", default: "30" },
    "clients": { type: "string", default: "4" },
    "seconds": { type: "string", default: "10" },
    "data-dir": { type: "string" },
    "help": { type: "boolean", default: false }
  }
})

if (flags.help) {
  console.log(`Options (defaults in brackets):
  --readings N    readings loaded, each with temperature and cpu [10000000]
  --sensors N     sensors; they need at least 1000 for the latest-values request [1000]
  --days N        days the readings span, ending now [30]
  --clients N     concurrent HTTP clients [4]
  --seconds N     measured seconds per request type [10]
  --data-dir DIR  embedded database folder, kept between runs [a new temporary folder, removed at the end]`)
  process.exit(0)
}

const positive = (name: string, text: string): number => {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} = ${text}: expected a positive integer`)
  return value
}

const databaseUrl = process.env["DATABASE_URL"] || undefined
/** Whether the data folder is this run's own, removed at the end; `--data-dir` keeps it for another run. */
const temporaryDataDir = flags["data-dir"] === undefined
const dataDir = path.resolve(flags["data-dir"] ?? fs.mkdtempSync(path.join(os.tmpdir(), "sensor-logger-bench-queries-")))
const requested = {
  readings: positive("readings", flags.readings),
  sensors: positive("sensors", flags.sensors),
  days: positive("days", flags.days)
}
const clients = positive("clients", flags.clients)
const seconds = positive("seconds", flags.seconds)
const repository = path.resolve(import.meta.dirname, "..")
const log = (line: string) => process.stderr.write(`${line}\n`)

/** Runs one step on the database, with its log lines on stderr, so stdout carries only the results. */
const runStep = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))))

/** The data set of an earlier run in `dataDir`, recorded after its load finished. */
const markerFile = path.join(dataDir, "bench-queries.json")

const databaseLayer = databaseUrl === undefined
  ? Database.layerEmbedded(embeddedDataDir(dataDir))
  : Database.layerServer(databaseUrl)

/** Table in which a run records the data set it loaded into the server of `DATABASE_URL`. */
const serverMarkerTable = "bench_queries_data_set"

/** Reads the data set an earlier run loaded, from `markerFile` on the embedded database or `serverMarkerTable` on a server. */
const readMarker = (): Promise<QueryDataShape | undefined> => {
  if (databaseUrl === undefined) {
    return Promise.resolve(fs.existsSync(markerFile) ? JSON.parse(fs.readFileSync(markerFile, "utf8")) as QueryDataShape : undefined)
  }
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [table] = yield* sql<{ name: string | null }>`select to_regclass(${serverMarkerTable})::text as name`
    if (table?.name == null) return undefined
    const [row] = yield* sql<{ shape: QueryDataShape }>`select shape from ${sql(serverMarkerTable)}`
    return row?.shape
  }).pipe(Effect.provide(databaseLayer), Effect.scoped, runStep)
}

const writeMarker = (shape: QueryDataShape): Promise<void> => {
  if (databaseUrl === undefined) {
    fs.writeFileSync(markerFile, JSON.stringify(shape))
    return Promise.resolve()
  }
  return Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`create table ${sql(serverMarkerTable)} (shape jsonb not null)`
    yield* sql`insert into ${sql(serverMarkerTable)} (shape) values (${JSON.stringify(shape)}::jsonb)`
  }).pipe(Effect.provide(databaseLayer), Effect.scoped, runStep)
}

/** Loads the readings unless the database contains the same data set already, and returns its shape. */
const prepareData = async (): Promise<QueryDataShape> => {
  const previous = await readMarker()
  if (previous !== undefined) {
    if (previous.readings === requested.readings && previous.sensors === requested.sensors && previous.days === requested.days) {
      log(`Reusing the ${previous.readings.toLocaleString("en-US")} readings loaded earlier into ${databaseUrl === undefined ? dataDir : "DATABASE_URL"}`)
      return previous
    }
    throw new Error(
      `${databaseUrl === undefined ? dataDir : "DATABASE_URL"} contains another data set (${JSON.stringify(previous)}): ` +
        "give a new --data-dir or an empty scratch database, or request the same data set"
    )
  }
  const shape: QueryDataShape = { ...requested, endSeconds: Math.floor(Date.now() / 1000) }
  const started = Date.now()
  log(`Loading ${shape.readings.toLocaleString("en-US")} readings of ${shape.sensors} sensors over ${shape.days} days`)
  await Effect.gen(function*() {
    yield* loadReadings(shape, (written) => log(`  ${written.toLocaleString("en-US")} readings, ${((Date.now() - started) / 1000).toFixed(0)} s`))
    log("Refreshing the read models")
    // The refresh runs the policy jobs, which `start` creates, as the ingest job does at start.
    const maintenance = yield* StorageMaintenance
    yield* maintenance.start
    // On a server, TimescaleDB's scheduler can start a policy's refresh at the same time, and the
    // second refresh of a window fails with 55P03 (lock_not_available). A refresh can be repeated.
    yield* maintenance.runOnce.pipe(
      Effect.tapError((error) => Effect.sync(() => log(`Refresh failed (${sqlErrorDetail(error).detail}); retrying in 5 s`))),
      Effect.retry({ while: (error) => sqlErrorDetail(error).sqlState === "55P03", schedule: Schedule.spaced("5 seconds"), times: 60 })
    )
  }).pipe(
    Effect.provide(Layer.mergeAll(SensorDataWriter.Default, StorageMaintenance.Default).pipe(Layer.provideMerge(databaseLayer))),
    Effect.scoped,
    runStep
  )
  log(`Loaded in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  await writeMarker(shape)
  return shape
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** Starts `sensor-logger query` on the data and resolves once `/health/ready` returns 200. */
const startQueryService = async (port: number) => {
  const child = spawn(process.execPath, ["bin/sensor-logger.js", "query"], {
    cwd: repository,
    env: { ...process.env, DATA_DIR: dataDir, HTTP_HOST: "127.0.0.1", HTTP_PORT: String(port), LOG_LEVEL: "warning" },
    stdio: ["ignore", "inherit", "inherit"]
  })
  const deadline = Date.now() + 180_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sensor-logger query exited with ${child.exitCode}`)
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`).then((response) => response.ok, () => false)
    if (ready) return child
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  child.kill("SIGTERM")
  throw new Error("sensor-logger query was not ready after 180 s")
}

/** Returns a seeded sequence of sensor ids, so that runs request the same sensors. */
const makeSensorPicker = (sensors: number) => {
  let state = 12_345
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
    return (state % sensors) + 1
  }
}

/**
 * Returns what served a request: the `source` and `read_model` of an aggregate response, or the
 * endpoint's table otherwise. A run whose aggregates came from raw readings shows it here.
 */
const sourceOf = async (url: string): Promise<string> => {
  const body = await (await fetch(url)).json() as { source?: string; read_model?: string | null }
  if (body.source === undefined) return new URL(url).pathname === "/v1/latest" ? "sensor_latest" : "sensor_data"
  return body.read_model === null || body.read_model === undefined ? body.source : `${body.source} (${body.read_model})`
}

const main = async () => {
  const shape = await prepareData()
  // Read before the query service opens the embedded database, which then belongs to it.
  const version = await Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ extversion: string | null; server: string }>`
      select (select extversion from pg_extension where extname = 'timescaledb') as extversion,
             current_setting('server_version') as server`
    return `${row?.extversion ?? "missing"} on PostgreSQL ${row?.server ?? "unknown"}`
  }).pipe(Effect.provide(databaseLayer), Effect.scoped, runStep)
  const port = await freePort()
  const child = await startQueryService(port)
  const base = `http://127.0.0.1:${port}`
  const pick = makeSensorPicker(shape.sensors)
  const start = startSeconds(shape)
  const iso = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString()
  /** Picks a whole day of the data, as `from` and `to`. */
  const someDay = () => {
    const day = Math.floor(((pick() - 1) / shape.sensors) * (shape.days - 1))
    return { from: iso(start + day * 86_400), to: iso(start + (day + 1) * 86_400) }
  }
  const latestCount = Math.min(1_000, shape.sensors)
  const hundred = Math.min(100, shape.sensors)
  const requests: ReadonlyArray<readonly [string, () => string]> = [
    ["raw page (100 readings of one sensor)", () => {
      const day = someDay()
      return `${base}/v1/readings?sensor_id=${pick()}&metric=temperature&limit=100&from=${day.from}&to=${day.to}`
    }],
    ["one sensor's day, 1-minute buckets", () => {
      const day = someDay()
      return `${base}/v1/aggregates?metric=temperature&fn=avg&bucket=1m&sensor_id=${pick()}&from=${day.from}&to=${day.to}`
    }],
    [`${shape.days} days hourly, ${hundred} sensors`, () => {
      const first = Math.max(1, Math.min(pick(), shape.sensors - hundred + 1))
      const ids = Array.from({ length: hundred }, (_, index) => first + index).join(",")
      return `${base}/v1/aggregates?metric=temperature&fn=avg&bucket=1h&group_by=sensor&sensor_id=${ids}&from=${iso(start)}&to=${iso(shape.endSeconds)}`
    }],
    [`latest values of ${latestCount} sensors`, () => {
      const ids = Array.from({ length: latestCount }, (_, index) => index + 1).join(",")
      return `${base}/v1/latest?sensor_id=${ids}&page_size=${Math.min(1_000, latestCount * 2)}`
    }]
  ]

  const cpus = os.cpus()
  const lines = [
    `machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}, Node.js ${process.version}`,
    `database: ${databaseUrl === undefined ? `embedded, ${dataDir}` : "server from DATABASE_URL"}, TimescaleDB ${version}`,
    `data: ${shape.readings.toLocaleString("en-US")} readings (temperature and cpu, so ${(shape.readings * 2).toLocaleString("en-US")} rows) of ${shape.sensors} sensors over ${shape.days} days, one reading a sensor every ${
      readingInterval(shape).toFixed(0)
    } s`,
    `load: ${clients} concurrent clients, ${seconds} s per request type after 3 warm-up requests`,
    `load average at start: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}`,
    "",
    "| request | served from | requests | p50 ms | p99 ms | requests/s | mean bytes | failures |",
    "|---|---|---|---|---|---|---|---|"
  ]
  try {
    for (const [label, nextUrl] of requests) {
      log(`Measuring ${label}`)
      const servedFrom = await sourceOf(nextUrl())
      const result = await runHttpLoad(nextUrl, { clients, seconds, warmup: 3 })
      lines.push(
        `| ${label} | ${servedFrom} | ${result.requests} | ${result.p50Millis.toFixed(1)} | ${result.p99Millis.toFixed(1)} | ${
          result.requestsPerSecond.toFixed(1)
        } | ${Math.round(result.meanBytes)} | ${result.failures} |`
      )
      if (result.firstFailure !== undefined) lines.push(`  first failure: ${result.firstFailure}`)
    }
  } finally {
    const exited = child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve))
    child.kill("SIGTERM")
    lines.push("", `load average at end: ${os.loadavg().map((load) => load.toFixed(2)).join(" ")}`)
    console.log(lines.join("\n"))
    await exited
    if (temporaryDataDir) {
      fs.rmSync(dataDir, { recursive: true, force: true })
      log(`Removed the temporary data folder ${dataDir}; give --data-dir to keep the data for another run`)
    }
  }
}

await main()
