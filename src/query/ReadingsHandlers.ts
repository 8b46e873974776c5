import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import { formatEpochMicros } from "../domain/Timestamp.ts"
import { QueryApi, ReadingsPage } from "./Api.ts"
import { decodeCursor, encodeCursor, queryFingerprint, type ReadingKey } from "./Cursor.ts"
import { checkRange, encodedJson, requireKnownSensors, withDatabaseErrors } from "./HandlerSupport.ts"
import { MetricDirectory } from "./MetricDirectory.ts"
import { InvalidQuery } from "./QueryErrors.ts"
import { ReadOnlyTransaction } from "./ReadOnlyTransaction.ts"
import { type PointRow, ReadingQueries, type RawSelection } from "./ReadingQueries.ts"

/** Readings per statement of an export; each chunk is its own read-only transaction. */
export const exportChunkSize = 5000

type ExportFormat = "ndjson" | "csv"

/** Picks the export format: `format` when given, otherwise CSV when `Accept` names `text/csv`, otherwise NDJSON. */
const negotiateFormat = (format: ExportFormat | undefined, accept: string | undefined): ExportFormat =>
  format ?? (accept !== undefined && /(^|,)\s*text\/csv\b/i.test(accept) ? "csv" : "ndjson")

const keyOf = (row: PointRow): ReadingKey => ({ timeMicros: row.timeMicros, sensorId: row.sensorId, metricId: row.metricId })

/**
 * Reads the `from` and `to` parameters as the client wrote them. A cursor's fingerprint uses them
 * rather than the decoded instants, because `now` and `now-1h` decode to another instant on every
 * request, and a client repeats the same parameters page after page.
 */
const rangeAsWritten = Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
  const query = new URLSearchParams(request.url.split("?")[1] ?? "")
  const written = (name: string) => {
    const values = query.getAll(name)
    return values.length === 0 ? undefined : values.join(",")
  }
  return { from: written("from"), to: written("to") }
})

/** The handlers of the `readings` group: keyset pages and streamed exports of raw readings. */
export const ReadingsHandlers = HttpApiBuilder.group(QueryApi, "readings", (handlers) =>
  Effect.gen(function*() {
    const queries = yield* ReadingQueries
    const directory = yield* MetricDirectory
    const transaction = yield* ReadOnlyTransaction
    const run = <A, E, R>(effect: Effect.Effect<A, E, R>) => withDatabaseErrors(transaction.run(effect))

    /** Checks the range and the sensors, and turns metric names into ids. */
    const selectionOf = (params: {
      readonly sensor_id?: ReadonlyArray<number> | undefined
      readonly metric?: ReadonlyArray<string> | undefined
      readonly from?: number | undefined
      readonly to?: number | undefined
    }) =>
      Effect.gen(function*() {
        yield* checkRange(params.from, params.to)
        yield* requireKnownSensors(params.sensor_id)
        const metricIds = params.metric === undefined ? undefined : yield* directory.requireIds(params.metric)
        const selection: RawSelection = { sensorIds: params.sensor_id, metricIds, from: params.from, to: params.to }
        return selection
      })

    const toPoints = (rows: ReadonlyArray<PointRow>) =>
      Effect.map(directory.namesOf(new Set(rows.map((row) => row.metricId))), (nameOf) =>
        rows.map((row) => ({
          ts: formatEpochMicros(row.timeMicros),
          sensor_id: row.sensorId,
          metric: nameOf(row.metricId),
          value: row.value
        })))

    return handlers
      .handle("readings", ({ urlParams }) =>
        run(Effect.gen(function*() {
          const range = yield* rangeAsWritten
          const fingerprint = queryFingerprint([urlParams.sensor_id, urlParams.metric, range.from, range.to, urlParams.order])
          let after: ReadingKey | undefined
          if (urlParams.cursor !== undefined) {
            const decoded = decodeCursor(urlParams.cursor, fingerprint)
            if (Either.isLeft(decoded)) {
              return yield* new InvalidQuery({ parameter: "cursor", value: urlParams.cursor.slice(0, 100), message: decoded.left })
            }
            after = decoded.right
          }
          const selection = yield* selectionOf(urlParams)
          // One more than the page, to tell whether another page follows.
          const rows = yield* queries.page({ selection, order: urlParams.order, limit: urlParams.limit + 1, after })
          const page = rows.slice(0, urlParams.limit)
          const data = yield* toPoints(page)
          const last = page[page.length - 1]
          return encodedJson(
            ReadingsPage,
            rows.length > urlParams.limit && last !== undefined ? { data, next_cursor: encodeCursor(keyOf(last), fingerprint) } : { data }
          )
        })))
      .handle("export", ({ headers, urlParams }) =>
        Effect.gen(function*() {
          const format = negotiateFormat(urlParams.format, headers.accept)
          const fetchChunk = (selection: RawSelection, after: ReadingKey | undefined) =>
            queries.page({ selection, order: "asc", limit: exportChunkSize, after })
          // The first chunk is read before the response starts, so bad parameters, unknown
          // sensors and database failures still get their status code.
          const [selection, first] = yield* run(
            Effect.flatMap(selectionOf(urlParams), (selection) => Effect.map(fetchChunk(selection, undefined), (rows) => [selection, rows] as const))
          )
          const encodeRows = (rows: ReadonlyArray<PointRow>) =>
            Effect.map(toPoints(rows), (points) =>
              points.map((point) =>
                format === "csv"
                  ? `${point.ts},${point.sensor_id},${point.metric},${point.value}\n`
                  : `${JSON.stringify(point)}\n`
              ).join(""))
          const chunks = Stream.paginateChunkEffect(first, (rows) =>
            Effect.gen(function*() {
              const text = yield* encodeRows(rows)
              const last = rows[rows.length - 1]
              if (rows.length < exportChunkSize || last === undefined) return [Chunk.of(text), Option.none()] as const
              const next = yield* withDatabaseErrors(transaction.run(fetchChunk(selection, keyOf(last))))
              return [Chunk.of(text), Option.some(next)] as const
            }))
          const header = format === "csv" ? Stream.make("ts,sensor_id,metric,value\n") : Stream.empty
          const body = Stream.concat(header, chunks).pipe(
            Stream.tapError((error) =>
              Effect.logError("Export stopped before its end; the response is cut off").pipe(Effect.annotateLogs({ error: String(error) }))
            ),
            Stream.encodeText
          )
          return HttpServerResponse.stream(body, {
            contentType: format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson"
          })
        }))
  }))
