import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { SensorId } from "../domain/SensorId.ts"
import { aggregateFunctions } from "./AggregateQueries.ts"
import { BucketParam } from "./Bucket.ts"
import { FillMode, fillModes } from "./GapFill.ts"
import { InvalidQuery, MetricNotFound, QueryUnavailable, SensorNotFound, TooManyPoints } from "./QueryErrors.ts"
import {
  choiceParam,
  InstantParam,
  limitParam,
  maxDataPointsParam,
  MetricNamesParam,
  pageParam,
  pageSize,
  SensorIdPathParam,
  SensorIdsParam
} from "./QueryParams.ts"
import { TimeZoneParam } from "./TimeZone.ts"

/** Largest `page_size` of the list endpoints. */
export const maxPageSize = 1000

/** Largest `page`, so that the offset of any page, `(page - 1) * page_size`, is a safe integer. */
export const maxPage = Math.floor(Number.MAX_SAFE_INTEGER / maxPageSize)

/** Largest number of buckets one aggregate request returns. */
export const maxBuckets = 10_000

/** Readings per page of `GET /v1/readings` when `limit` is not given, and the largest `limit`. */
export const readingLimits = { default: 1000, max: 10_000 } as const

const Paging = {
  page: Schema.optionalWith(pageParam(maxPage), { exact: true, default: () => 1 }),
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

/** A sensor with the metrics it has readings of and the times of its first and last reading. */
export const SensorSummaryView = Schema.Struct({
  id: SensorId,
  type: Schema.String,
  location: Schema.String,
  metrics: Schema.Array(Schema.String),
  first_reading: Schema.NullOr(Schema.String),
  last_reading: Schema.NullOr(Schema.String)
}).annotations({ identifier: "SensorSummary" })

/**
 * One reading: `ts` (ISO-8601 UTC), `sensor_id`, and one field per metric, as in the original
 * `{ts, sensor_id, temperature, cpu}`.
 */
export const ReadingView = Schema.Struct(
  { ts: Schema.String, sensor_id: Schema.Number },
  Schema.Record({ key: Schema.String, value: Schema.Union(Schema.Number, Schema.String) })
).annotations({ identifier: "Reading" })

/** One value of one metric of one sensor. */
export const PointView = Schema.Struct({
  ts: Schema.String,
  sensor_id: Schema.Number,
  metric: Schema.String,
  value: Schema.Number
}).annotations({ identifier: "Point" })

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

export const AggregateFunction = Schema.Literal(...aggregateFunctions).annotations({
  identifier: "AggregateFunction",
  message: (issue) =>
    `${JSON.stringify(issue.actual)} is not an aggregate function: expected one of ${aggregateFunctions.join(", ")}`
})

/**
 * One bucket of an aggregate series: the bucket's start, the sensor when grouped by sensor, and
 * the value of each requested metric.
 */
export const AggregateBucketView = Schema.Struct({
  period: Schema.String,
  sensor_id: Schema.optionalWith(Schema.Number, { exact: true }),
  values: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.Number) })
}).annotations({ identifier: "AggregateBucket" })

/** The latest value of each metric of one sensor. */
export const LatestView = Schema.Struct({
  sensor_id: Schema.Number,
  metrics: Schema.Record({ key: Schema.String, value: Schema.Struct({ ts: Schema.String, value: Schema.Number }) })
}).annotations({ identifier: "Latest" })

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

/** The response of `GET /v1/aggregates`: the resolved request, where the values came from, and the buckets. */
export const AggregateSeries = Schema.Struct({
  fn: AggregateFunction,
  bucket: Schema.String.annotations({ description: "The bucket used: a width such as 30m, or day, week, month" }),
  bucket_seconds: Schema.NullOr(Schema.Number).annotations({ description: "Width in seconds; null for calendar buckets" }),
  time_zone: Schema.String,
  fill: FillMode,
  source: Schema.Literal("raw", "read_model", "read_model+raw").annotations({
    description: "Where the values came from: raw readings, a continuous aggregate, or both"
  }),
  read_model: Schema.NullOr(Schema.String).annotations({ description: "The continuous aggregate used, if any" }),
  from: Schema.NullOr(Schema.String),
  to: Schema.NullOr(Schema.String),
  truncated: Schema.Boolean.annotations({
    description:
      "True when an open range contained more than the maximum number of buckets. Without from, the last buckets are returned; with from but without to, the first ones"
  }),
  data: Schema.Array(AggregateBucketView)
})

const aggregates = HttpApiEndpoint.get("aggregates", "/v1/aggregates")
  .setUrlParams(
    Schema.Struct({
      ...TimeRange,
      metric: MetricNamesParam,
      fn: Schema.optionalWith(choiceParam("fn", aggregateFunctions), { exact: true, default: () => "avg" as const }),
      bucket: Schema.optionalWith(BucketParam, { exact: true }),
      // The parameters below have no schema default, so clients written before they existed
      // still type-check; the handler applies the defaults (UTC, none, none, auto).
      time_zone: Schema.optionalWith(TimeZoneParam, { exact: true }),
      fill: Schema.optionalWith(choiceParam("fill", fillModes), { exact: true }),
      max_data_points: Schema.optionalWith(maxDataPointsParam(maxBuckets), { exact: true }),
      group_by: Schema.optionalWith(choiceParam("group_by", ["none", "sensor"]), { exact: true }),
      source: Schema.optionalWith(choiceParam("source", ["auto", "raw"]), { exact: true })
    })
  )
  .addSuccess(AggregateSeries)
  .addError(InvalidQuery)
  .addError(TooManyPoints)
  .addError(SensorNotFound)
  .addError(MetricNotFound)
  .annotate(OpenApi.Summary, "Bucketed series of one aggregate over one or more metrics and sensors")

/** The operations of the original read service, and bucketed aggregates. */
export class SensorsGroup extends HttpApiGroup.make("sensors")
  .add(listSensors)
  .add(listReadings)
  .add(averages)
  .add(averagesAndLatest)
  .add(aggregates)
  .addError(QueryUnavailable)
{}

const sensorSummaries = HttpApiEndpoint.get("sensorSummaries", "/v1/sensor-summaries")
  .setUrlParams(
    Schema.Struct({
      ...Paging,
      type: Schema.optionalWith(Schema.String.annotations({ description: "Only sensors of this type" }), { exact: true }),
      location: Schema.optionalWith(Schema.String.annotations({ description: "Only sensors at this location" }), { exact: true })
    })
  )
  .addSuccess(Schema.Struct({ sensors: Schema.Array(SensorSummaryView), page: Schema.Number, page_size: Schema.Number }))
  .annotate(OpenApi.Summary, "List sensors with their metrics and first and last reading times")

const getSensor = HttpApiEndpoint.get("getSensor")`/v1/sensors/${HttpApiSchema.param("id", SensorIdPathParam)}`
  .addSuccess(SensorSummaryView)
  .addError(SensorNotFound)
  .annotate(OpenApi.Summary, "One sensor with its metrics and first and last reading times")

/** The response of `GET /v1/latest`: one page of sensors with their latest values. */
export const LatestPage = Schema.Struct({ data: Schema.Array(LatestView), page: Schema.Number, page_size: Schema.Number })

const latest = HttpApiEndpoint.get("latest", "/v1/latest")
  .setUrlParams(
    Schema.Struct({
      ...Paging,
      sensor_id: Schema.optionalWith(SensorIdsParam, { exact: true }),
      metric: Schema.optionalWith(MetricNamesParam, { exact: true })
    })
  )
  .addSuccess(LatestPage)
  .addError(SensorNotFound)
  .addError(MetricNotFound)
  .annotate(OpenApi.Summary, "Latest value of each metric of many sensors, from the sensor_latest read model")

/** Sensors with what they measured, and their latest values. */
export class CatalogGroup extends HttpApiGroup.make("catalog")
  .add(sensorSummaries)
  .add(getSensor)
  .add(latest)
  .addError(QueryUnavailable)
{}

const RawRange = {
  ...TimeRange,
  metric: Schema.optionalWith(MetricNamesParam, { exact: true })
}

/** The response of `GET /v1/readings`: one page of raw readings and the cursor of the next. */
export const ReadingsPage = Schema.Struct({
  data: Schema.Array(PointView),
  next_cursor: Schema.optionalWith(Schema.String, { exact: true }).annotations({
    description: "Cursor of the next page; absent on the last page"
  })
})

const readings = HttpApiEndpoint.get("readings", "/v1/readings")
  .setUrlParams(
    Schema.Struct({
      ...RawRange,
      order: Schema.optionalWith(choiceParam("order", ["asc", "desc"]), { exact: true, default: () => "asc" as const }),
      limit: Schema.optionalWith(limitParam(readingLimits.max), { exact: true, default: () => readingLimits.default }),
      cursor: Schema.optionalWith(Schema.String.annotations({ description: "next_cursor of the previous page" }), { exact: true })
    })
  )
  .addSuccess(ReadingsPage)
  .addError(InvalidQuery)
  .addError(SensorNotFound)
  .addError(MetricNotFound)
  .annotate(OpenApi.Summary, "Raw readings of a range, one value per row, with keyset pagination")

const exportReadings = HttpApiEndpoint.get("export", "/v1/export")
  .setUrlParams(
    Schema.Struct({
      ...RawRange,
      format: Schema.optionalWith(choiceParam("format", ["ndjson", "csv"]), { exact: true })
    })
  )
  .setHeaders(Schema.Struct({ accept: Schema.optionalWith(Schema.String, { exact: true }) }))
  .addSuccess(HttpApiSchema.Text({ contentType: "application/x-ndjson" }))
  .addError(InvalidQuery)
  .addError(SensorNotFound)
  .addError(MetricNotFound)
  .annotate(
    OpenApi.Description,
    "Streams the readings of a range as NDJSON (one {ts, sensor_id, metric, value} a line) or CSV " +
      "(text/csv, header ts,sensor_id,metric,value), chosen by format or the Accept header"
  )
  .annotate(OpenApi.Summary, "Export raw readings as NDJSON or CSV")

/** Raw readings: paged, and exported as a stream. */
export class ReadingsGroup extends HttpApiGroup.make("readings")
  .add(readings)
  .add(exportReadings)
  .addError(QueryUnavailable)
{}

/** The query service's HTTP API; its OpenAPI document is served at `/openapi.json`. */
export class QueryApi extends HttpApi.make("sensor-logger")
  .add(SensorsGroup)
  .add(CatalogGroup)
  .add(ReadingsGroup)
  .annotate(OpenApi.Title, "sensor-logger query API")
  .annotate(OpenApi.Version, "0.2.0")
{}
