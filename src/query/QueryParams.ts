import { Either, ParseResult, Schema } from "effect"
import { MetricName } from "../domain/MetricName.ts"
import { SensorId } from "../domain/SensorId.ts"
import { EpochMicros, formatEpochMicros, parseIsoInstant } from "../domain/Timestamp.ts"

/** `page`: 1-based page number. */
export const Page = Schema.NumberFromString.pipe(
  Schema.int(),
  Schema.greaterThanOrEqualTo(1),
  Schema.annotations({
    description: "Page number, starting at 1",
    default: 1,
    message: (issue) => `${JSON.stringify(issue.actual)} is not a page number: expected an integer from 1`
  })
)

/** `page_size` with an upper bound, so one request cannot ask for the whole table. */
export const pageSize = (max: number) =>
  Schema.NumberFromString.pipe(
    Schema.int(),
    Schema.between(1, max),
    Schema.annotations({
      description: `Items per page, 1 to ${max}`,
      message: (issue) => `${JSON.stringify(issue.actual)} is not a page size: expected an integer from 1 to ${max}`
    })
  )

/**
 * An instant in a query: Unix seconds (fractions allowed) or ISO-8601 with a zone. Decodes to
 * microseconds since 1970 and encodes back as ISO-8601 UTC.
 */
export const InstantParam = Schema.transformOrFail(Schema.String, EpochMicros, {
  strict: true,
  decode: (text, _, ast) => {
    if (/^-?\d+(\.\d+)?$/.test(text)) {
      const seconds = Number(text)
      if (Math.abs(seconds) < 1e11) return ParseResult.succeed(EpochMicros.make(Math.round(seconds * 1e6)))
      return ParseResult.fail(new ParseResult.Type(ast, text, `${JSON.stringify(text)} is out of range for Unix seconds`))
    }
    const parsed = parseIsoInstant(text)
    return Either.isRight(parsed)
      ? ParseResult.succeed(parsed.right)
      : ParseResult.fail(
        new ParseResult.Type(ast, text, `${JSON.stringify(text)} is not Unix seconds or ${parsed.left.replace(/^expected /, "")}`)
      )
  },
  encode: (micros) => ParseResult.succeed(formatEpochMicros(micros))
}).annotations({
  identifier: "Instant",
  description: "Unix seconds or ISO-8601 with a zone, such as 2022-03-04T15:55:07Z"
})

/** A comma-separated list in one query parameter, each element decoded by `item`. */
const commaSeparated = <A>(item: Schema.Schema<A, string>) =>
  Schema.transform(Schema.String, Schema.NonEmptyArray(Schema.String), {
    strict: true,
    decode: (text) => {
      const parts = text.split(",").map((part) => part.trim())
      return [parts[0] ?? "", ...parts.slice(1)] as const
    },
    encode: (items) => items.join(",")
  }).pipe(Schema.compose(Schema.NonEmptyArray(item)))

/** `sensor_id`: one id or several, comma-separated. */
export const SensorIdsParam = commaSeparated(Schema.compose(Schema.NumberFromString, SensorId)).annotations({
  identifier: "SensorIds",
  description: "A sensor id, or several separated by commas"
})

/** `metric`: one metric name or several, comma-separated. */
export const MetricNamesParam = commaSeparated(MetricName).annotations({
  identifier: "MetricNames",
  description: "A metric name, or several separated by commas"
})
