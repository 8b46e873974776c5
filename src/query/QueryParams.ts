import { Either, ParseResult, Schema } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { MetricName } from "../domain/MetricName.ts"
import { isSensorId, SensorId } from "../domain/SensorId.ts"
import { EpochMicros, formatEpochMicros, numericTimestampToMicros, parseIsoInstant } from "../domain/Timestamp.ts"

/**
 * An integer parameter from `min` to `max`, written in decimal digits only, so that `1e3`, `0x10`
 * and `5.0` are rejected rather than read as numbers. The message quotes the text sent and names
 * the range, also for a value too large for a JavaScript number.
 */
const decimalIntegerParam = (options: { readonly noun: string; readonly min: number; readonly max: number; readonly description: string }) =>
  Schema.transformOrFail(
    Schema.String.annotations({ jsonSchema: { type: "string", pattern: "^[0-9]+$" } }),
    // OpenAPI takes a parameter's description and title from this side.
    Schema.Int.pipe(Schema.between(options.min, options.max), Schema.annotations({ title: options.noun, description: options.description })),
    {
      strict: true,
      decode: (text, _, ast) => {
        const value = /^\d+$/.test(text) ? Number(text) : Number.NaN
        if (Number.isSafeInteger(value) && value >= options.min && value <= options.max) return ParseResult.succeed(value)
        return ParseResult.fail(
          new ParseResult.Type(
            ast,
            text,
            `${JSON.stringify(text)} is not ${options.noun}: expected an integer from ${options.min} to ${options.max}, in decimal digits`
          )
        )
      },
      encode: (value) => ParseResult.succeed(String(value))
    }
  ).annotations({ description: options.description })

/** `page`: 1-based page number, up to `max`. */
export const pageParam = (max: number) =>
  decimalIntegerParam({ noun: "a page number", min: 1, max, description: `Page number, 1 to ${max}` }).annotations({ default: 1 })

/** `page_size` with an upper bound, so one request cannot ask for the whole table. */
export const pageSize = (max: number) => decimalIntegerParam({ noun: "a page size", min: 1, max, description: `Items per page, 1 to ${max}` })

const relativeUnitMicros: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86_400e6, w: 604_800e6 }

const acceptedInstants =
  "expected Unix seconds (1646409307), an ISO-8601 instant with a zone (2022-03-04T15:55:07Z), now, or now-<duration> (now-1h)"

const monthNames = [
  "January", "February", "March", "April", "May", "June",
  "July", "August", "September", "October", "November", "December"
]

/**
 * Explains why `text` is not an instant, naming the part that is wrong where it can, for the
 * message of `InstantParam`. `isoReason` is the reason `parseIsoInstant` returned.
 */
const invalidInstantReason = (text: string, isoReason: string): string => {
  if (text.startsWith("now")) {
    return "a relative instant is now, or now- followed by a whole number of up to 9 digits and a unit s, m, h, d or w, such as now-15m or now-7d"
  }
  const fields = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(.*)$/.exec(text)
  if (fields === null) return acceptedInstants
  const [, year = "", month = "", day = "", hour = "", minute = "", second = "", fraction = "", zone = ""] = fields
  const monthNumber = Number(month)
  if (monthNumber < 1 || monthNumber > 12) return `month ${month} does not exist; months run from 01 to 12`
  const daysInMonth = new Date(Date.UTC(Number(year), monthNumber, 0)).getUTCDate()
  if (Number(day) < 1 || Number(day) > daysInMonth) {
    return `the date ${year}-${month}-${day} does not exist, because ${monthNames[monthNumber - 1]} ${year} has ${daysInMonth} days`
  }
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    return `the time of day ${hour}:${minute}:${second} does not exist; expected 00:00:00 to 23:59:59`
  }
  if (fraction.length > 9) return `its fraction of a second has ${fraction.length} digits; at most 9 are accepted`
  if (zone === "") return "it has no zone; add Z for UTC or an offset such as +01:00 (%2B01:00 in a URL)"
  // A `+` in a query string decodes to a space, so `+01:00` sent unencoded arrives as ` 01:00`.
  if (/^ \d{2}(:?\d{2})?$/.test(zone)) return `its offset "${zone}" lost its + sign; write the + as %2B in a URL, such as %2B01:00`
  if (/^(Z|z|[+-]\d{2}(:?\d{2})?)$/.test(zone)) return isoReason
  return `the zone "${zone}" is not Z or an offset such as +01:00`
}

/**
 * An instant in a query: a Unix timestamp, ISO-8601 with a zone, `now`, or `now-` and a duration
 * (`now-15m`, `now-1h`, `now-7d`). A number's unit follows the ingest rule (seconds below 1e11,
 * then milliseconds, microseconds, nanoseconds), so a query can use the timestamps devices sent.
 * `now` is the time of decoding, on the query service's clock. Decodes to microseconds since 1970
 * and encodes back as ISO-8601 UTC.
 */
export const InstantParam = Schema.transformOrFail(Schema.String, EpochMicros, {
  strict: true,
  decode: (text, _, ast) => {
    const outOfRange = () =>
      ParseResult.fail(
        new ParseResult.Type(
          ast,
          text,
          `${JSON.stringify(text)} is out of range: an instant must lie between ${formatEpochMicros(-Number.MAX_SAFE_INTEGER)} and ${
            formatEpochMicros(Number.MAX_SAFE_INTEGER)
          }`
        )
      )
    if (/^-?\d+(\.\d+)?$/.test(text)) {
      const micros = numericTimestampToMicros(Number(text))
      return micros !== undefined && Number.isSafeInteger(micros) ? ParseResult.succeed(EpochMicros.make(micros)) : outOfRange()
    }
    const relative = /^now(?:-(\d{1,9})([smhdw]))?$/.exec(text)
    if (relative !== null) {
      const offset = relative[1] === undefined ? 0 : Number(relative[1]) * relativeUnitMicros[relative[2]!]!
      const micros = Date.now() * 1000 - offset
      return Number.isSafeInteger(micros) ? ParseResult.succeed(EpochMicros.make(micros)) : outOfRange()
    }
    const parsed = parseIsoInstant(text)
    return Either.isRight(parsed)
      ? ParseResult.succeed(parsed.right)
      : ParseResult.fail(new ParseResult.Type(ast, text, `${JSON.stringify(text)} is not an instant: ${invalidInstantReason(text, parsed.left)}`))
  },
  encode: (micros) => ParseResult.succeed(formatEpochMicros(micros))
}).annotations({
  identifier: "Instant",
  description:
    "Unix seconds (milliseconds, microseconds and nanoseconds are recognised by magnitude), ISO-8601 with a zone such as 2022-03-04T15:55:07Z, now, or now-<duration> such as now-1h (s, m, h, d, w)"
})

/** Parses a sensor id written in decimal, or returns undefined. */
const parseSensorId = (text: string): SensorId | undefined => {
  const id = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN
  return isSensorId(id) ? id : undefined
}

const invalidSensorId = (text: string) => `${JSON.stringify(text)} is not a sensor id: expected an integer from 0 to ${Number.MAX_SAFE_INTEGER}`

/** A sensor id in a query or path: a non-negative safe integer, with a message that quotes the value. */
const SensorIdText = Schema.transformOrFail(Schema.String, SensorId, {
  strict: true,
  decode: (text, _, ast) => {
    const id = parseSensorId(text)
    return id === undefined ? ParseResult.fail(new ParseResult.Type(ast, text, invalidSensorId(text))) : ParseResult.succeed(id)
  },
  encode: (id) => ParseResult.succeed(String(id))
})

/** Splits a list parameter into its parts: each repeated value is split at commas, and each part trimmed. */
const listParts = (input: string | ReadonlyArray<string>): NonEmptyReadonlyArray<string> => {
  const parts = (typeof input === "string" ? [input] : input).flatMap((text) => text.split(",")).map((part) => part.trim())
  return [parts[0] ?? "", ...parts.slice(1)]
}

/**
 * A list in a query parameter, comma-separated (`sensor_id=1,2`), repeated (`sensor_id=1&sensor_id=2`)
 * or both, each element decoded by `item`.
 */
const commaSeparated = <A>(item: Schema.Schema<A, string>) =>
  Schema.transform(Schema.Union(Schema.String, Schema.Array(Schema.String)), Schema.NonEmptyArray(Schema.String), {
    strict: true,
    decode: listParts,
    encode: (items) => items.join(",")
  }).pipe(Schema.compose(Schema.NonEmptyArray(item)))

/**
 * Sensor ids that `SensorIdsParam` has decoded. The declaration checks them with one plain loop,
 * where `Schema.NonEmptyArray(SensorId)` runs the schema machinery for every element.
 */
const SensorIdList = Schema.declare(
  (input: unknown): input is NonEmptyReadonlyArray<SensorId> => Array.isArray(input) && input.length > 0 && input.every(isSensorId),
  { identifier: "SensorIdList", jsonSchema: { type: "array", minItems: 1, items: { type: "integer", minimum: 0 } } }
)

/**
 * `sensor_id`: one id or several, comma-separated or repeated, decoded in one pass. Decoding it
 * through `commaSeparated(SensorIdText)` took 14 % of the query service's busy CPU time in a
 * profile of requests for 1,000 sensors. An invalid element fails with an issue whose path ends
 * in its index, such as `["sensor_id", 2]` for the third id.
 */
export const SensorIdsParam = Schema.transformOrFail(Schema.Union(Schema.String, Schema.Array(Schema.String)), SensorIdList, {
  strict: true,
  decode: (input, _, ast) => {
    const parts = listParts(input)
    const ids: Array<SensorId> = new Array(parts.length)
    for (let index = 0; index < parts.length; index++) {
      const id = parseSensorId(parts[index]!)
      if (id === undefined) {
        return ParseResult.fail(new ParseResult.Pointer(index, input, new ParseResult.Type(ast, parts[index], invalidSensorId(parts[index]!))))
      }
      ids[index] = id
    }
    return ParseResult.succeed(ids as unknown as NonEmptyReadonlyArray<SensorId>)
  },
  encode: (ids) => ParseResult.succeed(ids.join(","))
}).annotations({
  identifier: "SensorIds",
  description: "A sensor id, or several separated by commas"
})

/** `metric`: one metric name or several, comma-separated. */
export const MetricNamesParam = commaSeparated(MetricName).annotations({
  identifier: "MetricNames",
  description: "A metric name, or several separated by commas"
})

/** `sensor_id` in a path: one sensor id. */
export const SensorIdPathParam = SensorIdText.annotations({ identifier: "SensorIdPath" })

/** `limit`: readings per page, from 1 to `max`. */
export const limitParam = (max: number) => decimalIntegerParam({ noun: "a limit", min: 1, max, description: `Readings per page, 1 to ${max}` })

/** `max_data_points`: the maximum number of buckets in the response, from 1 to `max`. */
export const maxDataPointsParam = (max: number) =>
  decimalIntegerParam({
    noun: "a number of points",
    min: 1,
    max,
    description: `Maximum number of buckets in the response, 1 to ${max}; without bucket, it picks the smallest width that fits`
  })

/**
 * A parameter that takes one of `values`. It decodes from any string, so that a wrong value gets
 * one message naming them all rather than one per literal.
 */
export const choiceParam = <const Values extends readonly [string, ...Array<string>]>(name: string, values: Values) =>
  Schema.transformOrFail(
    Schema.String.annotations({ jsonSchema: { type: "string", enum: [...values] } }),
    Schema.Literal(...values),
    {
      strict: true,
      decode: (text, _, ast) =>
        (values as ReadonlyArray<string>).includes(text)
          ? ParseResult.succeed(text as Values[number])
          : ParseResult.fail(
            new ParseResult.Type(ast, text, `${JSON.stringify(text)} is not a valid ${name}: expected one of ${values.join(", ")}`)
          ),
      encode: ParseResult.succeed
    }
  ).annotations({ identifier: name })
