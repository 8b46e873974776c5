import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** A query whose parameters decode but do not make sense together (400). */
export class InvalidQuery extends Schema.TaggedError<InvalidQuery>()(
  "InvalidQuery",
  { parameter: Schema.String, value: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * A bucketed request whose range contains more buckets than allowed (400), raised before any data
 * is read. `suggested_bucket` is a width that fits.
 */
export class TooManyPoints extends Schema.TaggedError<TooManyPoints>()(
  "TooManyPoints",
  {
    parameter: Schema.String,
    value: Schema.String,
    message: Schema.String,
    maximum: Schema.Number,
    count: Schema.Number,
    suggested_bucket: Schema.NullOr(Schema.String)
  },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** A request for sensors that have neither metadata nor readings (404). */
export class SensorNotFound extends Schema.TaggedError<SensorNotFound>()(
  "SensorNotFound",
  { sensor_ids: Schema.Array(Schema.Number), message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** A request for metrics that no reading has ever had (404), such as a misspelt name. */
export class MetricNotFound extends Schema.TaggedError<MetricNotFound>()(
  "MetricNotFound",
  { metrics: Schema.Array(Schema.String), message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** Error when the database failed or timed out during the query (503). The request may be retried. */
export class QueryUnavailable extends Schema.TaggedError<QueryUnavailable>()(
  "QueryUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}
