import { HttpServerResponse } from "@effect/platform"
import type { SqlError } from "@effect/sql"
import { Effect, Predicate, type Schema } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { sqlErrorDetail } from "../runtime/database/SqlErrorDetail.ts"
import { CatalogQueries } from "./CatalogQueries.ts"
import { InvalidQuery, QueryUnavailable, SensorNotFound } from "./QueryErrors.ts"
import type { QueryTimeout } from "./ReadOnlyTransaction.ts"

/** Logs a database failure and fails with a 503 error that contains no SQL text or connection details. */
export const unavailable = (error: SqlError.SqlError) => {
  const { detail, sqlState } = sqlErrorDetail(error)
  // 42P01 (undefined_table): the ingest job, which owns the schema, has never run on this database.
  // 57014 (query_canceled): the server's statement_timeout fired.
  // NOTE: only the embedded database ran here, which never raises 57014, so this branch is untested.
  const message = sqlState === "42P01"
    ? "the database has no sensor-logger tables yet; run the ingest job (or all-in-one) once to create them"
    : sqlState === "57014"
    ? "the database cancelled the query at QUERY_STATEMENT_TIMEOUT_MS; narrow the range or use a coarser bucket"
    : `the database could not answer: ${detail}`
  return Effect.logError("Query failed").pipe(
    Effect.annotateLogs({ error: detail, sqlState }),
    Effect.zipRight(Effect.fail(new QueryUnavailable({ message })))
  )
}

/** Logs a query that timed out and fails with a 503 error that names the limit. */
export const timedOut = (error: QueryTimeout) =>
  Effect.logWarning("Query timed out").pipe(
    Effect.annotateLogs({ limitMillis: error.limitMillis }),
    Effect.zipRight(Effect.fail(new QueryUnavailable({ message: error.message })))
  )

/** Maps the database failures of a handler's effect to 503 responses. */
export const withDatabaseErrors = <A, E, R>(
  effect: Effect.Effect<A, E | SqlError.SqlError | QueryTimeout, R>
): Effect.Effect<A, Exclude<E, SqlError.SqlError | QueryTimeout> | QueryUnavailable, R> =>
  Effect.catchAll(effect, (error): Effect.Effect<never, Exclude<E, SqlError.SqlError | QueryTimeout> | QueryUnavailable> => {
    if (Predicate.isTagged(error, "SqlError")) return unavailable(error as SqlError.SqlError)
    if (Predicate.isTagged(error, "QueryTimeout")) return timedOut(error as QueryTimeout)
    return Effect.fail(error as Exclude<E, SqlError.SqlError | QueryTimeout>)
  })

/** Rejects a range whose `to` is not later than its `from`. */
export const checkRange = (from: number | undefined, to: number | undefined) =>
  from !== undefined && to !== undefined && from >= to
    ? Effect.fail(
      new InvalidQuery({
        parameter: "to",
        value: formatEpochMicros(to),
        message: `"to" must be later than "from" (${formatEpochMicros(from)}); the range is [from, to)`
      })
    )
    : Effect.void

/** Fails with 404 when a sensor of `ids` has neither metadata nor readings. */
export const requireKnownSensors = (ids: ReadonlyArray<number> | undefined) =>
  Effect.gen(function*() {
    if (ids === undefined) return
    const unknown = yield* (yield* CatalogQueries).unknownSensors(ids)
    if (unknown.length === 0) return
    return yield* new SensorNotFound({
      sensor_ids: unknown,
      message: `no sensor with id ${unknown.join(", ")}: it has neither metadata nor readings; GET /v1/sensor-summaries lists the known sensors`
    })
  })

/**
 * Responds with `body` as JSON without passing it through the endpoint's success schema again.
 * The compiler checks that `body` already has the schema's encoded form. In a response of 69,700
 * buckets, that pass took about 14 % of the request's CPU time (docs/benchmarks.md).
 */
export const encodedJson = <S extends Schema.Schema.Any>(_schema: S, body: Schema.Schema.Encoded<S>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(body)
