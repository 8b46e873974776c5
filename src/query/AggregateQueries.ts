import { SqlClient, type Statement } from "@effect/sql"
import { Effect } from "effect"
import { continuousAggregates, readContinuousAggregateStates } from "../runtime/database/ReadModels.ts"
import type { AggregatePlan, Range, ReadModelState } from "./AggregatePlan.ts"

/** The aggregate functions of `GET /v1/aggregates`; each composes from partial aggregates. */
export const aggregateFunctions = ["avg", "min", "max", "sum", "count", "first", "last"] as const
export type AggregateFunction = (typeof aggregateFunctions)[number]

/** The partial aggregates a function needs, from raw readings and from a read model, and how they combine. */
interface Partials {
  readonly raw: string
  readonly readModel: string
  readonly combine: string
}

const partials: Record<AggregateFunction, Partials> = {
  // PostgreSQL's avg(float8) also sums the squares, which overflows for values above about 1e154.
  avg: {
    raw: "count(*) as n, sum(d.value) as total",
    readModel: "c.value_count as n, c.value_sum as total",
    combine: "sum(total) / sum(n)::float8"
  },
  count: { raw: "count(*) as n", readModel: "c.value_count as n", combine: "sum(n)::int8" },
  sum: { raw: "sum(d.value) as total", readModel: "c.value_sum as total", combine: "sum(total)" },
  min: { raw: "min(d.value) as lo", readModel: "c.value_min as lo", combine: "min(lo)" },
  max: { raw: "max(d.value) as hi", readModel: "c.value_max as hi", combine: "max(hi)" },
  // Readings of several sensors at the same instant are ordered by sensor id, in both sources.
  first: {
    raw: "min(d.time) as ft, first(d.value, d.time) as fv",
    readModel: "c.first_time as ft, c.first_value as fv",
    combine: "(array_agg(fv order by ft, sensor_id))[1]"
  },
  last: {
    raw: "max(d.time) as lt, last(d.value, d.time) as lv",
    readModel: "c.last_time as lt, c.last_value as lv",
    combine: "(array_agg(lv order by lt desc, sensor_id))[1]"
  }
}

/** Assignment of rows to buckets: a fixed width from 1970, or the bucket starts of a calendar series. */
export type BucketAssignment =
  | { readonly _tag: "Fixed"; readonly widthMicros: number }
  | { readonly _tag: "Starts"; readonly starts: ReadonlyArray<number> }

/** One value of an aggregate series. `sensorId` is null unless grouped by sensor. */
export interface AggregateValue {
  readonly periodMicros: number
  readonly sensorId: number | null
  readonly metricId: number
  readonly value: number | null
}

/** SQL of the aggregate requests over `sensor_data` and its continuous aggregates. */
export class AggregateQueries extends Effect.Service<AggregateQueries>()("sensor-logger/AggregateQueries", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient

    const instant = (micros: number) => sql`timestamptz 'epoch' + ${micros}::int8 * interval '1 microsecond'`

    /**
     * The watermark and invalidated ranges of every read model. The catalog read runs in a
     * savepoint: when the catalog differs in another TimescaleDB version, the request is served
     * from raw readings and a warning is logged.
     */
    const readModelStates = sql.withTransaction(readContinuousAggregateStates(sql)).pipe(
      Effect.map((rows) =>
        rows.flatMap((row): Array<ReadModelState> => {
          const model = continuousAggregates.find((aggregate) => aggregate.name === row.name)
          if (model === undefined) return []
          return [{ ...row, widthMicros: model.widthSeconds * 1e6 }]
        })
      ),
      Effect.catchAll((error) =>
        Effect.logWarning("Cannot read the continuous aggregates' state; serving aggregates from raw readings").pipe(
          Effect.annotateLogs({ error: error.message }),
          Effect.as([] as Array<ReadModelState>)
        )
      )
    )

    const filters = (alias: string, metricIds: ReadonlyArray<number>, sensorIds: ReadonlyArray<number> | undefined) => {
      const conditions: Array<Statement.Fragment> = [sql`${sql.literal(alias)}.metric_id = any(${[...metricIds]}::int4[])`]
      if (sensorIds !== undefined) conditions.push(sql`${sql.literal(alias)}.sensor_id = any(${[...sensorIds]}::int8[])`)
      return conditions
    }

    const inRanges = (column: string, ranges: ReadonlyArray<Range>) =>
      sql.or(ranges.map(([start, end]) => sql`(${sql.literal(column)} >= ${instant(start)} and ${sql.literal(column)} < ${instant(end)})`))

    /**
     * The first and last reading time of the selection within `[from, to)`, where either bound
     * may be open, to resolve an open range.
     */
    const dataRange = Effect.fn("AggregateQueries.dataRange")(function*(
      metricIds: ReadonlyArray<number>,
      sensorIds: ReadonlyArray<number> | undefined,
      from: number | undefined,
      to: number | undefined
    ) {
      const conditions = filters("d", metricIds, sensorIds)
      if (from !== undefined) conditions.push(sql`d.time >= ${instant(from)}`)
      if (to !== undefined) conditions.push(sql`d.time < ${instant(to)}`)
      const [row] = yield* sql<{ first_us: number | null; last_us: number | null }>`
        select (extract(epoch from min(d.time)) * 1000000)::int8 as first_us,
               (extract(epoch from max(d.time)) * 1000000)::int8 as last_us
        from sensor_data d
        where ${sql.and(conditions)}`
      return row?.first_us == null || row.last_us == null ? undefined : { first: row.first_us, last: row.last_us }
    })

    const aggregate = Effect.fn("AggregateQueries.aggregate")(function*(options: {
      readonly fn: AggregateFunction
      readonly metricIds: ReadonlyArray<number>
      readonly sensorIds: ReadonlyArray<number> | undefined
      readonly groupBySensor: boolean
      readonly assignment: BucketAssignment
      readonly plan: AggregatePlan
    }) {
      const { assignment, plan } = options
      const parts = partials[options.fn]
      const bucketOf = (column: string) =>
        assignment._tag === "Fixed"
          ? sql`(extract(epoch from time_bucket(${assignment.widthMicros}::int8 * interval '1 microsecond', ${
            sql.literal(column)
          }, timestamptz 'epoch')) * 1000000)::int8`
          : sql`th.starts[width_bucket(${sql.literal(column)}, th.bounds)]`
      const starts = assignment._tag === "Starts" ? [...assignment.starts] : []
      const selects: Array<Statement.Fragment> = []
      if (plan.readModel !== undefined && plan.readModelRanges.length > 0) {
        selects.push(sql`
          select ${bucketOf("c.bucket")} as period_us, c.sensor_id, c.metric_id, ${sql.literal(parts.readModel)}
          from ${sql.literal(plan.readModel.name)} c, th
          where ${sql.and(filters("c", options.metricIds, options.sensorIds))} and ${inRanges("c.bucket", plan.readModelRanges)}`)
      }
      if (plan.rawRanges.length > 0) {
        selects.push(sql`
          select ${bucketOf("d.time")} as period_us, d.sensor_id, d.metric_id, ${sql.literal(parts.raw)}
          from sensor_data d, th
          where ${sql.and(filters("d", options.metricIds, options.sensorIds))} and ${inRanges("d.time", plan.rawRanges)}
          group by 1, 2, 3`)
      }
      if (selects.length === 0) return []
      const sensorColumn = options.groupBySensor ? sql`sensor_id` : sql`null::int8`
      const grouping = options.groupBySensor ? sql`period_us, sensor_id, metric_id` : sql`period_us, metric_id`
      const rows = yield* sql<{ period_us: number; sensor_id: number | null; metric_id: number; value: number | null }>`
        with th as (
          select ${starts}::int8[] as starts,
                 array(select timestamptz 'epoch' + s * interval '1 microsecond' from unnest(${starts}::int8[]) as s order by s) as bounds
        ),
        parts as (${sql.join(" union all ", false)(selects)})
        select period_us, ${sensorColumn} as sensor_id, metric_id, ${sql.literal(parts.combine)} as value
        from parts
        group by ${grouping}
        order by ${grouping}`
      return rows.map((row): AggregateValue => ({
        periodMicros: row.period_us,
        sensorId: row.sensor_id,
        metricId: row.metric_id,
        value: row.value
      }))
    })

    return { readModelStates, dataRange, aggregate } as const
  })
}) {}
