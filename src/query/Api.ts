import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { SensorId } from "../domain/SensorId.ts"
import { BucketParam } from "./Bucket.ts"
import { InvalidQuery, QueryUnavailable } from "./QueryErrors.ts"
import { InstantParam, MetricNamesParam, Page, pageSize, SensorIdsParam } from "./QueryParams.ts"

/** Largest `page_size` of the list endpoints. */
export const maxPageSize = 1000

/** Largest number of buckets one aggregate request returns. */
export const maxBuckets = 10_000

const Paging = {
  page: Schema.optionalWith(Page, { exact: true, default: () => 1 }),
  page_size: Schema.optionalWith(pageSize(maxPageSize), { exact: true, default: () => 100 })
}

const TimeRange = {
  sensor_id: Schema.optionalWith(SensorIdsParam, { exact: true }),
  from: Schema.optionalWith(InstantParam.annotations({ description: "Start of the range, inclusive" }), { exact: true }),
  to: Schema.optionalWith(InstantParam.annotations({ description: "End of the range, exclusive" }), { exact: true })
}

/** A sensor as `logger.sensor.instance` described it. */
export const SensorView = Schema.Struct({ id: SensorId, type: Schema.String, location: Schema.String }).annotations({
  identifier: "Sensor"
})

/**
 * One reading: `ts` (ISO-8601 UTC), `sensor_id`, and one field per metric, as in the original
 * `{ts, sensor_id, temperature, cpu}`.
 */
export const ReadingView = Schema.Struct(
  { ts: Schema.String, sensor_id: Schema.Number },
  Schema.Record({ key: Schema.String, value: Schema.Union(Schema.Number, Schema.String) })
).annotations({ identifier: "Reading" })

/** One 30-minute bucket of the original GetSensorAvgData. */
export const AverageView = Schema.Struct({
  period: Schema.String,
  avg_temp: Schema.NullOr(Schema.Number),
  avg_cpu: Schema.NullOr(Schema.Number)
}).annotations({ identifier: "Average" })

/** One 30-minute bucket of the original GetSensorAvgAndLatestData. */
export const AverageAndLatestView = Schema.Struct({
  ...AverageView.fields,
  last_temp: Schema.NullOr(Schema.Number)
}).annotations({ identifier: "AverageAndLatest" })

/** The aggregate functions of `GET /v1/aggregates`. */
const aggregateFunctions = ["avg", "min", "max", "sum", "count", "first", "last"] as const
export const AggregateFunction = Schema.Literal(...aggregateFunctions).annotations({
  identifier: "AggregateFunction",
  message: (issue) =>
    `${JSON.stringify(issue.actual)} is not an aggregate function: expected one of ${aggregateFunctions.join(", ")}`
})
export type AggregateFunction = typeof AggregateFunction.Type

/** One bucket of an aggregate series: the bucket's start and the value of each requested metric. */
export const AggregateBucketView = Schema.Struct({
  period: Schema.String,
  values: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.Number) })
}).annotations({ identifier: "AggregateBucket" })

const listSensors = HttpApiEndpoint.get("listSensors", "/v1/sensors")
  .setUrlParams(Schema.Struct(Paging))
  .addSuccess(Schema.Struct({ sensors: Schema.Array(SensorView), page: Schema.Number, page_size: Schema.Number }))
  .annotate(OpenApi.Summary, "List sensors by id (ListSensor)")

const listReadings = HttpApiEndpoint.get("listReadings", "/v1/sensor-data")
  .setUrlParams(Schema.Struct({ ...Paging, ...TimeRange }))
  .addSuccess(Schema.Struct({ data: Schema.Array(ReadingView), page: Schema.Number, page_size: Schema.Number }))
  .addError(InvalidQuery)
  .annotate(OpenApi.Summary, "List readings by time, then sensor (ListSensorData)")

const averages = HttpApiEndpoint.get("averages", "/v1/sensor-data/avg")
  .setUrlParams(Schema.Struct(TimeRange))
  .addSuccess(Schema.Struct({ data: Schema.Array(AverageView) }))
  .addError(InvalidQuery)
  .annotate(OpenApi.Summary, "Average temperature and cpu per 30 minutes (GetSensorAvgData)")

const averagesAndLatest = HttpApiEndpoint.get("averagesAndLatest", "/v1/sensor-data/avg-latest")
  .setUrlParams(Schema.Struct(TimeRange))
  .addSuccess(Schema.Struct({ data: Schema.Array(AverageAndLatestView) }))
  .addError(InvalidQuery)
  .annotate(OpenApi.Summary, "Averages per 30 minutes plus the last temperature (GetSensorAvgAndLatestData)")

const aggregates = HttpApiEndpoint.get("aggregates", "/v1/aggregates")
  .setUrlParams(
    Schema.Struct({
      ...TimeRange,
      metric: MetricNamesParam,
      fn: Schema.optionalWith(AggregateFunction, { exact: true, default: () => "avg" as const }),
      bucket: Schema.optionalWith(BucketParam, { exact: true, default: () => 1800 })
    })
  )
  .addSuccess(
    Schema.Struct({
      bucket_seconds: Schema.Number,
      fn: AggregateFunction,
      truncated: Schema.Boolean.annotations({
        description: `True when the series has more than ${maxBuckets} buckets and only the first ${maxBuckets} are returned`
      }),
      data: Schema.Array(AggregateBucketView)
    })
  )
  .addError(InvalidQuery)
  .annotate(OpenApi.Summary, "Bucketed series of one aggregate over one or more metrics")

/** The read side's operations: the four of the original read service, and bucketed aggregates. */
export class SensorsGroup extends HttpApiGroup.make("sensors")
  .add(listSensors)
  .add(listReadings)
  .add(averages)
  .add(averagesAndLatest)
  .add(aggregates)
  .addError(QueryUnavailable)
{}

/** The query service's HTTP API; its OpenAPI document is served at `/openapi.json`. */
export class QueryApi extends HttpApi.make("sensor-logger")
  .add(SensorsGroup)
  .annotate(OpenApi.Title, "sensor-logger query API")
  .annotate(OpenApi.Version, "0.1.0")
{}
