/**
 * Times aggregate queries served from raw readings against the same queries planned over the
 * continuous aggregates, on the embedded TimescaleDB (in memory).
 *
 * It applies the project's migrations, writes a week of readings (50 sensors, 2 metrics, one
 * value a minute: 1,008,000 rows) with one `insert ... select from generate_series`, refreshes
 * the read models as the in-process runner does (`StorageMaintenance.runOnce`, printing the
 * longest time a query waited for the session meanwhile), and runs each query 5 times through
 * `AggregateQueries`, once with a raw plan and once with the plan of `planAggregate`. It checks that both plans return the same values and
 * prints the median time of each. The chunks stay uncompressed.
 *
 * Run: npx tsx bench/read-models.ts
 */
import { SqlClient } from "@effect/sql"
import { ConfigProvider, Duration, Effect, Fiber, Layer, Logger, LogLevel } from "effect"
import { performance } from "node:perf_hooks"
import { runMigrations } from "../src/ingest/Migrations.ts"
import { StorageMaintenance } from "../src/ingest/StorageMaintenance.ts"
import { planAggregate, rawPlan } from "../src/query/AggregatePlan.ts"
import { type AggregateFunction, AggregateQueries } from "../src/query/AggregateQueries.ts"
import { bucketStarts } from "../src/query/Bucket.ts"
import { Database } from "../src/runtime/database/Database.ts"

const settings = { sensors: 50, minutes: 7 * 24 * 60, runs: 5, first: Date.UTC(2022, 2, 7) * 1000 } as const

const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const queries = yield* AggregateQueries
  yield* runMigrations
  yield* sql`insert into metrics (name) values ('temperature'), ('cpu')`

  let started = performance.now()
  yield* sql`
    insert into sensor_data (time, sensor_id, metric_id, value)
    select timestamptz '2022-03-07T00:00:00Z' + m * interval '1 minute', s, metric, ((m * 7 + s * 3 + metric) % 400) / 4.0
    from generate_series(0, ${settings.minutes - 1}) as m, generate_series(1, ${settings.sensors}) as s, generate_series(1, 2) as metric`
  const [count] = yield* sql<{ rows: number }>`select count(*)::int8 as rows from sensor_data`
  console.log(`wrote ${count?.rows} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`)

  // The refresh the ingest side runs on the embedded database, with a probe that measures how
  // long a query waits for the single session meanwhile.
  const maintenance = yield* StorageMaintenance
  yield* maintenance.start
  let longestWait = 0
  const probe = yield* Effect.fork(Effect.forever(
    Effect.timed(sql`select 1`).pipe(
      Effect.tap(([elapsed]) => Effect.sync(() => (longestWait = Math.max(longestWait, Duration.toMillis(elapsed))))),
      Effect.zipRight(Effect.sleep("20 millis"))
    )
  ))
  started = performance.now()
  yield* maintenance.runOnce
  yield* Fiber.interrupt(probe)
  console.log(
    `refreshed the read models in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `the longest wait of a query meanwhile was ${(longestWait / 1000).toFixed(1)} s`
  )

  const from = settings.first
  const to = settings.first + settings.minutes * 60e6
  const cases: Array<{ label: string; fn: AggregateFunction; bucketSeconds: number }> = [
    { label: "avg, 1-hour buckets", fn: "avg", bucketSeconds: 3600 },
    { label: "max, 1-day buckets", fn: "max", bucketSeconds: 86_400 },
    { label: "last, 30-minute buckets", fn: "last", bucketSeconds: 1800 }
  ]
  const states = yield* queries.readModelStates
  console.log("query (all sensors, both metrics, one week)   raw ms   read model ms   read model")
  for (const { label, fn, bucketSeconds } of cases) {
    const starts = bucketStarts(bucketSeconds, "UTC", from, to, 10_000)
    const planned = planAggregate(from, to, starts, states)
    const run = (plan: typeof planned) =>
      queries.aggregate({
        fn,
        metricIds: [1, 2],
        sensorIds: undefined,
        groupBySensor: false,
        assignment: { _tag: "Fixed", widthMicros: bucketSeconds * 1e6 },
        plan
      })
    const timings = { raw: [] as Array<number>, model: [] as Array<number> }
    let rawRows: unknown = undefined
    let modelRows: unknown = undefined
    for (let index = 0; index < settings.runs; index++) {
      let start = performance.now()
      rawRows = yield* run(rawPlan(from, to))
      timings.raw.push(performance.now() - start)
      start = performance.now()
      modelRows = yield* run(planned)
      timings.model.push(performance.now() - start)
    }
    if (JSON.stringify(rawRows) !== JSON.stringify(modelRows)) throw new Error(`${label}: the plans returned different values`)
    console.log(
      `${label.padEnd(46)} ${median(timings.raw).toFixed(0).padStart(6)} ${median(timings.model).toFixed(0).padStart(15)}   ${planned.readModel?.name ?? "none"}`
    )
  }
})

// Compression stays off so that the raw timings read uncompressed chunks; the in-process runner
// stays off so that the script decides when to refresh.
const settingsProvider = ConfigProvider.fromMap(new Map([["STORAGE_COMPRESS_AFTER", "off"], ["READ_MODEL_REFRESH_INTERVAL_MS", "0"]]))

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(AggregateQueries.Default, StorageMaintenance.Default)),
  Effect.provide(Database.layerEmbedded("memory://")),
  Effect.withConfigProvider(settingsProvider),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
