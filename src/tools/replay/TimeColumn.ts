import { Either, Schema } from "effect"
import { EpochMicros } from "../../domain/Timestamp.ts"

/** A `--time-format` value that is neither a known format name nor a valid strftime pattern. */
export class InvalidTimeFormat extends Schema.TaggedError<InvalidTimeFormat>()("InvalidTimeFormat", {
  format: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `invalid time format ${JSON.stringify(this.format)}: ${this.reason}. ` +
      `Use iso, unix, unix-ms or a strftime pattern such as "%Y-%m-%d %H:%M:%S"`
    )
  }
}

/** A `--time-zone` value that is neither UTC, a fixed offset nor an IANA zone name known to Intl. */
export class InvalidTimeZone extends Schema.TaggedError<InvalidTimeZone>()("InvalidTimeZone", {
  zone: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `invalid time zone ${JSON.stringify(this.zone)}: ${this.reason}. ` +
      `Use UTC, a fixed offset such as +01:00 or -0530, or an IANA name such as Europe/Brussels`
    )
  }
}

/** A cell of the time column that does not parse in the chosen format and zone. */
export class InvalidTimestamp extends Schema.TaggedError<InvalidTimestamp>()("InvalidTimestamp", {
  line: Schema.Number,
  value: Schema.String,
  format: Schema.String,
  zone: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `line ${this.line}: invalid timestamp ${describeValue(this.value)} for time format ` +
      `${JSON.stringify(this.format)} in time zone ${this.zone}: ${this.reason}`
    )
  }
}

const describeValue = (value: string): string => {
  const text = JSON.stringify(value)
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text
}

// ---------------------------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------------------------

/** The zone that timestamps without their own offset are read in. */
export type TimeZone =
  | { readonly _tag: "FixedOffset"; readonly name: string; readonly offsetMinutes: number }
  | { readonly _tag: "Iana"; readonly name: string; readonly formatter: Intl.DateTimeFormat }

const fixedOffsetPattern = /^([+-])(\d{2})(?::?(\d{2}))?$/

/** Parses an offset such as `+01:00`, `-0530` or `+02` into minutes east of UTC, or returns the reason it is invalid. */
const parseOffsetMinutes = (text: string): Either.Either<number, string> | undefined => {
  const match = fixedOffsetPattern.exec(text)
  if (match === null) return undefined
  const [, sign, hours = "0", minutes = "0"] = match
  if (Number(hours) > 23 || Number(minutes) > 59) {
    return Either.left("the offset's hours must be 00 to 23 and its minutes 00 to 59")
  }
  return Either.right((sign === "-" ? -1 : 1) * (Number(hours) * 60 + Number(minutes)))
}

/**
 * Parses a `--time-zone` value: `UTC` (or `Z`), a fixed offset (`+01:00`, `-0530`, `+02`), or an
 * IANA zone name (`Europe/Brussels`) that the runtime's `Intl.DateTimeFormat` supports.
 */
export const parseTimeZone = (text: string): Either.Either<TimeZone, InvalidTimeZone> => {
  const trimmed = text.trim()
  if (/^(utc|z)$/i.test(trimmed)) return Either.right({ _tag: "FixedOffset", name: "UTC", offsetMinutes: 0 })
  const offset = parseOffsetMinutes(trimmed)
  if (offset !== undefined) {
    return Either.match(offset, {
      onLeft: (reason) => Either.left(new InvalidTimeZone({ zone: text, reason })),
      onRight: (offsetMinutes) => Either.right({ _tag: "FixedOffset", name: trimmed, offsetMinutes })
    })
  }
  try {
    const formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: trimmed,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
    return Either.right({ _tag: "Iana", name: formatter.resolvedOptions().timeZone, formatter })
  } catch {
    return Either.left(new InvalidTimeZone({ zone: text, reason: "not a fixed offset nor a time zone name known to Intl" }))
  }
}

const hourMillis = 3_600_000
const dayMillis = 24 * hourMillis

/** A calendar date and time of day with no zone, as read from a cell. */
interface WallClock {
  readonly year: number
  readonly month: number
  readonly day: number
  readonly hour: number
  readonly minute: number
  readonly second: number
  /** Fraction of the second, in microseconds (0 to 999,999). */
  readonly micros: number
}

/**
 * Returns the milliseconds since 1970 of a wall-clock time read as UTC. `setUTCFullYear` is used
 * because `Date.UTC` maps the years 0 to 99 to 1900 to 1999.
 */
const wallClockAsUtcMillis = (year: number, month: number, day: number, hour = 0, minute = 0, second = 0) => {
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, 0)
  return date.getTime()
}

/** Returns the zone's offset from UTC at an instant, in milliseconds (positive east of Greenwich). */
const ianaOffsetAt = (formatter: Intl.DateTimeFormat, instantMillis: number): number => {
  const wholeSecond = Math.floor(instantMillis / 1000) * 1000
  const fields: Record<string, number> = {}
  for (const part of formatter.formatToParts(new Date(wholeSecond))) {
    if (part.type !== "literal") fields[part.type] = Number(part.value)
  }
  const local = wallClockAsUtcMillis(
    fields.year ?? 1970,
    fields.month ?? 1,
    fields.day ?? 1,
    fields.hour ?? 0,
    fields.minute ?? 0,
    fields.second ?? 0
  )
  return local - wholeSecond
}

/** Converts the wall-clock milliseconds of a zone into an instant, or returns why there is none. */
type WallClockResolver = (localMillis: number) => Either.Either<number, string>

/**
 * Resolves wall-clock times of an IANA zone. A time in a gap (clocks moved forward) is an error.
 * An ambiguous time (clocks moved back, so it occurs twice) takes the earlier instant, which is
 * the one before the change, like `disambiguation: "earlier"` in JavaScript's Temporal.
 *
 * The candidate offsets are those one day before and one day after the wall-clock time. Rows sorted
 * by time mostly stay within one local hour, so the resolver caches, by local hour, whether the
 * offset is the same on both sides.
 * NOTE: a zone that changes its offset twice within two days can be resolved wrongly there.
 */
const ianaResolver = (zone: { readonly name: string; readonly formatter: Intl.DateTimeFormat }): WallClockResolver => {
  const offsetAt = (instant: number) => ianaOffsetAt(zone.formatter, instant)
  let cachedHour = Number.NaN
  let cachedOffset: number | undefined

  return (localMillis) => {
    const hour = Math.floor(localMillis / hourMillis)
    if (hour !== cachedHour) {
      const before = offsetAt(hour * hourMillis - dayMillis)
      const after = offsetAt((hour + 1) * hourMillis + dayMillis)
      cachedHour = hour
      cachedOffset = before === after ? before : undefined
    }
    if (cachedOffset !== undefined) return Either.right(localMillis - cachedOffset)

    const offsets = new Set([offsetAt(localMillis - dayMillis), offsetAt(localMillis + dayMillis)])
    const instants = [...offsets]
      .map((offset) => localMillis - offset)
      .filter((instant) => offsetAt(instant) === localMillis - instant)
      .sort((a, b) => a - b)
    const earliest = instants[0]
    if (earliest === undefined) {
      return Either.left(`this local time does not exist in ${zone.name}, because the clocks skip it at a daylight-saving change`)
    }
    return Either.right(earliest)
  }
}

const makeResolver = (zone: TimeZone): WallClockResolver => {
  if (zone._tag === "Iana") return ianaResolver(zone)
  const offsetMillis = zone.offsetMinutes * 60_000
  return (localMillis) => Either.right(localMillis - offsetMillis)
}

const daysInMonth = (year: number, month: number): number => new Date(wallClockAsUtcMillis(year, month + 1, 0)).getUTCDate()

/** Returns why the fields do not form a valid date and time of day, or undefined when they do. */
const checkWallClock = (clock: WallClock): string | undefined => {
  if (clock.month < 1 || clock.month > 12) return `month ${clock.month} is out of range 1 to 12`
  const days = daysInMonth(clock.year, clock.month)
  if (clock.day < 1 || clock.day > days) {
    return `day ${clock.day} does not exist in ${clock.year}-${String(clock.month).padStart(2, "0")}, which has ${days} days`
  }
  if (clock.hour > 23) return `hour ${clock.hour} is out of range 0 to 23`
  if (clock.minute > 59) return `minute ${clock.minute} is out of range 0 to 59`
  // NOTE: a leap second (:60) is rejected; Unix time has no representation for it.
  if (clock.second > 59) return `second ${clock.second} is out of range 0 to 59`
  return undefined
}

/** Converts a wall clock to microseconds, applying `offsetMinutes` when the cell gave one, else the zone. */
const wallClockToMicros = (
  clock: WallClock,
  offsetMinutes: number | undefined,
  resolve: WallClockResolver
): Either.Either<EpochMicros, string> => {
  const invalid = checkWallClock(clock)
  if (invalid !== undefined) return Either.left(invalid)
  const local = wallClockAsUtcMillis(clock.year, clock.month, clock.day, clock.hour, clock.minute, clock.second)
  const instant = offsetMinutes === undefined ? resolve(local) : Either.right(local - offsetMinutes * 60_000)
  return Either.flatMap(instant, (millis) => toEpochMicros(millis * 1000 + clock.micros))
}

const toEpochMicros = (micros: number): Either.Either<EpochMicros, string> =>
  Number.isSafeInteger(micros)
    ? Either.right(EpochMicros.make(micros))
    : Either.left("the instant is too far from 1970 to count in microseconds")

/** Reads up to nine fraction digits as microseconds; digits beyond the microsecond are truncated. */
const fractionToMicros = (digits: string): number => Number(digits.padEnd(6, "0").slice(0, 6))

/** Reads a cell offset (`Z`, `+01:00`, `+0100`, `+01`) as minutes east of UTC. */
const cellOffsetMinutes = (text: string): Either.Either<number, string> => {
  if (text === "Z" || text === "z") return Either.right(0)
  return parseOffsetMinutes(text) ?? Either.left(`invalid UTC offset ${JSON.stringify(text)}`)
}

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

/** Parses one cell of the time column, given the cell's line number for the error. */
export type ParseTimestamp = (value: string, line: number) => Either.Either<EpochMicros, InvalidTimestamp>

const isoPattern =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i

/** Parses ISO-8601 cells: `2015-02-02`, `2015-02-02T13:19`, `2015-02-02 13:19:00.5`, each optionally with `Z` or an offset. */
const isoParser = (resolve: WallClockResolver) => (value: string): Either.Either<EpochMicros, string> => {
  const match = isoPattern.exec(value)
  if (match === null) {
    return Either.left("expected ISO-8601 such as 2015-02-02T13:19:00, 2015-02-02 13:19:00.5 or 2015-02-02T13:19:00+01:00")
  }
  const [, year, month, day, hour = "0", minute = "0", second = "0", fraction = "", offset] = match
  const clock: WallClock = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour),
    minute: Number(minute),
    second: Number(second),
    micros: fractionToMicros(fraction)
  }
  if (offset === undefined) return wallClockToMicros(clock, undefined, resolve)
  return Either.flatMap(cellOffsetMinutes(offset.toUpperCase()), (minutes) => wallClockToMicros(clock, minutes, resolve))
}

const decimalPattern = /^([+-]?)(\d+)(?:\.(\d*))?$/
const exponentPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d+$/

/**
 * Parses a count of `unit` since 1970 (`unit` is 1e6 for seconds, 1e3 for milliseconds). Plain
 * decimals are read digit by digit, so no precision is lost. Exponent notation goes through a float.
 */
const epochParser = (unit: 1_000_000 | 1_000, name: string) => (value: string): Either.Either<EpochMicros, string> => {
  const match = decimalPattern.exec(value)
  if (match !== null) {
    const [, sign, whole = "0", fraction = ""] = match
    const fractionDigits = unit === 1_000_000 ? 6 : 3
    const fractionMicros = Number(fraction.padEnd(fractionDigits, "0").slice(0, fractionDigits))
    const magnitude = Number(whole) * unit + fractionMicros
    return toEpochMicros(sign === "-" ? -magnitude : magnitude)
  }
  if (exponentPattern.test(value)) return toEpochMicros(Math.round(Number(value) * unit))
  return Either.left(`expected ${name} since 1970-01-01T00:00:00Z, such as 1422883140 or 1422883140.5`)
}

// ---------------------------------------------------------------------------------------------
// strftime patterns
// ---------------------------------------------------------------------------------------------

type PatternField = "year" | "year2" | "month" | "monthName" | "day" | "hour" | "hour12" | "ampm" | "minute" | "second" | "fraction" | "offset"

const monthNames = [
  "january", "february", "march", "april", "may", "june",
  "july", "august", "september", "october", "november", "december"
]

/** The directives a pattern may contain, with the regular expression of their text and the field they set. */
const directives: Record<string, { readonly source: string; readonly field: PatternField }> = {
  Y: { source: "(\\d{4})", field: "year" },
  y: { source: "(\\d{2})", field: "year2" },
  m: { source: "(\\d{1,2})", field: "month" },
  b: { source: `(${monthNames.map((name) => name.slice(0, 3)).join("|")})`, field: "monthName" },
  B: { source: `(${monthNames.join("|")})`, field: "monthName" },
  d: { source: "(\\d{1,2})", field: "day" },
  e: { source: " ?(\\d{1,2})", field: "day" },
  H: { source: "(\\d{1,2})", field: "hour" },
  I: { source: "(\\d{1,2})", field: "hour12" },
  p: { source: "(am|pm)", field: "ampm" },
  M: { source: "(\\d{1,2})", field: "minute" },
  S: { source: "(\\d{1,2})", field: "second" },
  f: { source: "(\\d{1,9})", field: "fraction" },
  z: { source: "(z|[+-]\\d{2}(?::?\\d{2})?)", field: "offset" }
}

/** Shorthand directives, replaced by their expansion before compiling. */
const shorthands: Record<string, string> = { T: "%H:%M:%S", F: "%Y-%m-%d", R: "%H:%M" }

const supportedDirectives = "%Y %y %m %b %B %d %e %H %I %p %M %S %f %z %T %F %R %%"

interface CompiledPattern {
  readonly regex: RegExp
  /** The field each capture group sets, in group order. */
  readonly fields: ReadonlyArray<PatternField>
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

/**
 * Compiles a strftime-like pattern into an anchored, case-insensitive regular expression.
 * Characters other than directives must appear as they are (so `T` matches `T` or `t`).
 */
const compilePattern = (pattern: string): Either.Either<CompiledPattern, string> => {
  // One left-to-right pass, so the `%%` of `%%T` stays a literal percent sign followed by `T`.
  const expanded = pattern.replace(/%(.)/g, (directive, name: string) => shorthands[name] ?? directive)
  let source = "^"
  const fields: Array<PatternField> = []

  for (let index = 0; index < expanded.length; index++) {
    const character = expanded[index] ?? ""
    if (character !== "%") {
      source += escapeRegExp(character)
      continue
    }
    const name = expanded[index + 1]
    index++
    if (name === undefined) return Either.left(`the pattern ends with a lone %; write %% for a literal %`)
    if (name === "%") {
      source += "%"
      continue
    }
    const directive = directives[name]
    if (directive === undefined) return Either.left(`unsupported directive %${name}; supported: ${supportedDirectives}`)
    const sameField = directive.field === "year2" ? "year" : directive.field
    if (fields.some((field) => (field === "year2" ? "year" : field) === sameField)) {
      return Either.left(`the pattern sets the ${sameField} twice (at %${name})`)
    }
    fields.push(directive.field)
    source += directive.source
  }

  const has = (...names: Array<PatternField>) => names.some((name) => fields.includes(name))
  if (!has("year", "year2")) return Either.left("the pattern has no year; add %Y or %y")
  if (!has("month", "monthName")) return Either.left("the pattern has no month; add %m, %b or %B")
  if (!has("day")) return Either.left("the pattern has no day; add %d or %e")
  if (has("hour12") !== has("ampm")) return Either.left("%I (12-hour clock) and %p (AM or PM) must be used together")
  if (has("hour") && has("hour12")) return Either.left("the pattern sets the hour twice (%H and %I)")
  return Either.right({ regex: new RegExp(`${source}$`, "i"), fields })
}

/** Reads the groups of a match into a wall clock and, when the pattern has `%z`, an offset in minutes. */
const readPatternMatch = (
  fields: ReadonlyArray<PatternField>,
  groups: ReadonlyArray<string | undefined>
): Either.Either<{ clock: WallClock; offsetMinutes: number | undefined }, string> => {
  const clock = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0, micros: 0 }
  let hour12: number | undefined
  let pm = false
  let offsetMinutes: number | undefined
  for (const [index, field] of fields.entries()) {
    const text = groups[index + 1] ?? ""
    switch (field) {
      case "year":
        clock.year = Number(text)
        break
      case "year2":
        // POSIX strptime: 69 to 99 are 1969 to 1999, 00 to 68 are 2000 to 2068.
        clock.year = Number(text) + (Number(text) >= 69 ? 1900 : 2000)
        break
      case "month":
        clock.month = Number(text)
        break
      case "monthName":
        clock.month = monthNames.findIndex((name) => name.startsWith(text.toLowerCase())) + 1
        break
      case "day":
        clock.day = Number(text)
        break
      case "hour":
        clock.hour = Number(text)
        break
      case "hour12":
        hour12 = Number(text)
        break
      case "ampm":
        pm = text.toLowerCase() === "pm"
        break
      case "minute":
        clock.minute = Number(text)
        break
      case "second":
        clock.second = Number(text)
        break
      case "fraction":
        clock.micros = fractionToMicros(text)
        break
      case "offset": {
        const offset = cellOffsetMinutes(text.toUpperCase())
        if (Either.isLeft(offset)) return Either.left(offset.left)
        offsetMinutes = offset.right
        break
      }
    }
  }
  if (hour12 !== undefined) {
    if (hour12 < 1 || hour12 > 12) return Either.left(`hour ${hour12} is out of range 1 to 12 for %I`)
    clock.hour = (hour12 % 12) + (pm ? 12 : 0)
  }
  return Either.right({ clock, offsetMinutes })
}

const patternParser = (pattern: string, compiled: CompiledPattern, resolve: WallClockResolver) =>
(value: string): Either.Either<EpochMicros, string> => {
  const match = compiled.regex.exec(value)
  if (match === null) return Either.left(`the value does not match the pattern ${JSON.stringify(pattern)}`)
  return Either.flatMap(
    readPatternMatch(compiled.fields, match),
    ({ clock, offsetMinutes }) => wallClockToMicros(clock, offsetMinutes, resolve)
  )
}

/**
 * Builds the parser of a time column. `format` is `iso` (ISO-8601), `unix` (seconds since 1970,
 * fractions allowed), `unix-ms` (milliseconds since 1970) or a strftime-like pattern with the
 * directives %Y %y %m %b %B %d %e %H %I %p %M %S %f %z %T %F %R and %%. `zone` applies to ISO
 * values and patterns without their own offset, and Unix times ignore it. Cells are trimmed of
 * surrounding whitespace first.
 */
export const makeTimestampParser = (
  format: string,
  zone: TimeZone
): Either.Either<ParseTimestamp, InvalidTimeFormat> => {
  const resolve = makeResolver(zone)
  let parseValue: (value: string) => Either.Either<EpochMicros, string>
  switch (format) {
    case "iso":
      parseValue = isoParser(resolve)
      break
    case "unix":
      parseValue = epochParser(1_000_000, "seconds")
      break
    case "unix-ms":
      parseValue = epochParser(1_000, "milliseconds")
      break
    default: {
      if (!format.includes("%")) {
        return Either.left(new InvalidTimeFormat({ format, reason: "not a format name and contains no % directive" }))
      }
      const compiled = compilePattern(format)
      if (Either.isLeft(compiled)) return Either.left(new InvalidTimeFormat({ format, reason: compiled.left }))
      parseValue = patternParser(format, compiled.right, resolve)
    }
  }
  return Either.right((value, line) =>
    Either.mapLeft(
      parseValue(value.trim()),
      (reason) => new InvalidTimestamp({ line, value, format, zone: zone.name, reason })
    )
  )
}
