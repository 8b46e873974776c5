import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** A query whose parameters decode but do not make sense together (400). */
export class InvalidQuery extends Schema.TaggedError<InvalidQuery>()(
  "InvalidQuery",
  { parameter: Schema.String, value: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** Error when the database failed or timed out during the query (503). The request may be retried. */
export class QueryUnavailable extends Schema.TaggedError<QueryUnavailable>()(
  "QueryUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}
