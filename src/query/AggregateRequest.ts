import { Effect } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { planAggregate, rawPlan } from "./AggregatePlan.ts"
import { type AggregateFunction, AggregateQueries, type BucketAssignment } from "./AggregateQueries.ts"
import { type Bucket, bucketStarts, countBuckets, fittingWidth, formatBucket, startOfLastBuckets, suggestBucket } from "./Bucket.ts"
import { type FillMode, fillSeries } from "./GapFill.ts"
import { checkRange, requireKnownSensors } from "./HandlerSupport.ts"
import { MetricDirectory } from "./MetricDirectory.ts"
import { InvalidQuery, TooManyPoints } from "./QueryErrors.ts"

/** The decoded parameters of `GET /v1/aggregates`. */
export interface AggregateParams {
  readonly sensor_id?: ReadonlyArray<number> | undefined
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly metric: ReadonlyArray<string>
  readonly fn: AggregateFunction
  readonly bucket?: Bucket | undefined
  readonly time_zone?: string | undefined
  readonly fill?: FillMode | undefined
  readonly max_data_points?: number | undefined
  readonly group_by?: "none" | "sensor" | undefined
  readonly source?: "auto" | "raw" | undefined
}

/** `AggregateParams` with the defaults applied. */
interface ResolvedParams extends AggregateParams {
  readonly time_zone: string
  readonly fill: FillMode
  readonly group_by: "none" | "sensor"
  readonly source: "auto" | "raw"
}

/** Default bucket when neither `bucket` nor `max_data_points` is given: 30 minutes, as the original averages. */
const defaultBucket = 1800

const tooManyPoints = (bucket: Bucket, zone: string, from: number, to: number, count: number, maximum: number) => {
  const suggestion = suggestBucket(bucket, zone, from, to, maximum)
  const fitting = suggestion === undefined ? "narrow the range" : `use a bucket of at least ${formatBucket(suggestion)}`
  return new TooManyPoints({
    parameter: "bucket",
    value: formatBucket(bucket),
    maximum,
    count,
    suggested_bucket: suggestion === undefined ? null : formatBucket(suggestion),
    message: `the range contains ${count} buckets of ${formatBucket(bucket)}, more than the maximum of ${maximum}; ${fitting}`
  })
}

/**
 * Computes the response of an aggregate request. It checks the size of a closed range before
 * reading anything, resolves an open range from the data and truncates it to the maximum, plans
 * the range over the read models, and fills the gaps. It runs inside the caller's read-only
 * transaction.
 */
export const runAggregate = (request: AggregateParams, maxBuckets: number) =>
  Effect.gen(function*() {
    const params: ResolvedParams = {
      ...request,
      time_zone: request.time_zone ?? "UTC",
      fill: request.fill ?? "none",
      group_by: request.group_by ?? "none",
      source: request.source ?? "auto"
    }
    yield* checkRange(params.from, params.to)
    const zone = params.time_zone
    if (typeof params.bucket === "number" && zone !== "UTC") {
      return yield* new InvalidQuery({
        parameter: "time_zone",
        value: zone,
        message: "time_zone applies to the calendar buckets day, week and month; fixed widths are aligned to UTC, so leave it out or use bucket=day"
      })
    }
    const maximum = params.max_data_points ?? maxBuckets
    const pickBucket = (from: number, to: number): Bucket =>
      params.bucket ?? (params.max_data_points === undefined ? defaultBucket : fittingWidth(from, to, maximum) ?? defaultBucket)

    // A closed range is checked before any statement, so an oversized request costs nothing.
    if (params.from !== undefined && params.to !== undefined) {
      const bucket = pickBucket(params.from, params.to)
      const count = countBuckets(bucket, zone, params.from, params.to)
      if (count > maximum) return yield* tooManyPoints(bucket, zone, params.from, params.to, count, maximum)
    }
    yield* requireKnownSensors(params.sensor_id)
    const queries = yield* AggregateQueries
    const metricIds = yield* (yield* MetricDirectory).requireIds(params.metric)

    let from = params.from
    let to = params.to
    /** The first and last reading of the selection inside the bounds given, when an end is open. */
    let readings: { readonly first: number; readonly last: number } | undefined
    if (from === undefined || to === undefined) {
      // An open end is resolved from the data: the first reading, or just after the last one.
      // An end the client gave is kept, so that `fill` covers the whole requested range.
      readings = metricIds.length === 0 ? undefined : yield* queries.dataRange(metricIds, params.sensor_id, from, to)
      from = readings === undefined ? undefined : from ?? readings.first
      to = readings === undefined ? undefined : to ?? readings.last + 1
    }
    const bucket = from !== undefined && to !== undefined ? pickBucket(from, to) : params.bucket ?? defaultBucket
    const header = {
      fn: params.fn,
      bucket: formatBucket(bucket),
      bucket_seconds: typeof bucket === "number" ? bucket : null,
      time_zone: zone,
      fill: params.fill
    }
    if (from === undefined || to === undefined || from >= to) {
      return { ...header, source: "raw" as const, read_model: null, from: null, to: null, truncated: false, data: [] }
    }

    // Only an open range can contain more buckets than the maximum, because a closed one was
    // rejected above. Its buckets before the first and after the last reading would be empty, so
    // the range first shrinks to the readings. If it is still too long and `from` is open, it
    // keeps the most recent buckets, as a dashboard of the latest data expects. If only `to` is
    // open, it keeps the first buckets, and the client continues from the response's `to`.
    let truncated = false
    if (readings !== undefined && countBuckets(bucket, zone, from, to) > maximum) {
      from = Math.max(from, readings.first)
      to = Math.min(to, readings.last + 1)
      if (countBuckets(bucket, zone, from, to) > maximum) {
        truncated = true
        if (params.from === undefined) from = startOfLastBuckets(bucket, zone, to, maximum)
        else to = bucketStarts(bucket, zone, from, to, maximum + 1)[maximum]!
      }
    }
    const starts = bucketStarts(bucket, zone, from, to, maximum)

    const plan = params.source === "raw"
      ? rawPlan(from, to)
      : planAggregate(from, to, starts, yield* queries.readModelStates)
    const assignment: BucketAssignment = typeof bucket === "number"
      ? { _tag: "Fixed", widthMicros: bucket * 1e6 }
      : { _tag: "Starts", starts }
    const rows = metricIds.length === 0 ? [] : yield* queries.aggregate({
      fn: params.fn,
      metricIds,
      sensorIds: params.sensor_id,
      groupBySensor: params.group_by === "sensor",
      assignment,
      plan
    })

    const data = yield* assembleSeries(params, metricIds, starts, rows)
    let source: "raw" | "read_model" | "read_model+raw" = "read_model+raw"
    if (plan.readModel === undefined) source = "raw"
    else if (plan.rawRanges.length === 0) source = "read_model"
    return {
      ...header,
      source,
      read_model: plan.readModel?.name ?? null,
      from: formatEpochMicros(from),
      to: formatEpochMicros(to),
      truncated,
      data
    }
  })

/** Sensor key of the rows of an ungrouped request in `assembleSeries`. Sensor ids are never negative. */
const allSensors = -1

/**
 * Turns the (bucket, sensor, metric) values into response rows, one per bucket (and sensor),
 * filled as requested. Each bucket start is formatted once, however many sensors share it.
 */
const assembleSeries = (
  params: ResolvedParams,
  metricIds: ReadonlyArray<number>,
  starts: ReadonlyArray<number>,
  rows: ReadonlyArray<{ periodMicros: number; sensorId: number | null; metricId: number; value: number | null }>
) =>
  Effect.gen(function*() {
    const nameOf = yield* (yield* MetricDirectory).namesOf(metricIds)
    // Values by sensor, then metric, then bucket start.
    const series = new Map<number, Map<number, Map<number, number | null>>>()
    for (const row of rows) {
      const sensor = row.sensorId ?? allSensors
      let byMetric = series.get(sensor)
      if (byMetric === undefined) series.set(sensor, byMetric = new Map())
      let values = byMetric.get(row.metricId)
      if (values === undefined) byMetric.set(row.metricId, values = new Map())
      values.set(row.periodMicros, row.value)
    }
    const sensors: ReadonlyArray<number> = params.group_by === "sensor"
      ? [...new Set([...(params.sensor_id ?? []), ...series.keys()])].sort((a, b) => a - b)
      : [allSensors]

    const indexOfStart = new Map<number, number>()
    starts.forEach((start, index) => indexOfStart.set(start, index))
    const periods = starts.map(formatEpochMicros)
    const emptyValue = params.fn === "count" ? 0 : undefined
    const initial = params.fn === "count" && params.fill !== "none" ? 0 : null
    /** Returns a bucket's values before any metric is set: every requested metric, in request order. */
    const emptyValues = () => {
      const values: Record<string, number | null> = {}
      for (const metric of params.metric) values[metric] = initial
      return values
    }
    const noValues = new Map<number, number | null>()

    const data: Array<{ period: string; sensor_id?: number; values: Record<string, number | null> }> = []
    for (const sensor of sensors) {
      const byMetric = series.get(sensor)
      const buckets: Array<Record<string, number | null> | undefined> = new Array(starts.length)
      for (const metricId of metricIds) {
        const name = nameOf(metricId)
        for (const [start, value] of fillSeries(starts, byMetric?.get(metricId) ?? noValues, params.fill, emptyValue)) {
          const index = indexOfStart.get(start)!
          const values = buckets[index] ?? (buckets[index] = emptyValues())
          values[name] = value
        }
      }
      for (let index = 0; index < starts.length; index++) {
        const values = params.fill === "none" ? buckets[index] : buckets[index] ?? emptyValues()
        if (values === undefined) continue
        data.push(sensor === allSensors ? { period: periods[index]!, values } : { period: periods[index]!, sensor_id: sensor, values })
      }
    }
    return data
  })
