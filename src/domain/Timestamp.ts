import { Either, Schema } from "effect"

/** An instant as whole microseconds since 1970-01-01T00:00:00Z, the precision of PostgreSQL's timestamptz. */
export const EpochMicros = Schema.Int.pipe(Schema.brand("EpochMicros"))
export type EpochMicros = typeof EpochMicros.Type

/** The instants a reading's `ts` may take; anything outside is rejected rather than stored as a wrong year. */
export interface TimestampRange {
  /** Earliest accepted instant, inclusive. */
  readonly min: EpochMicros
  /** Latest accepted instant, exclusive. */
  readonly max: EpochMicros
}

/** 1990-01-01T00:00:00Z up to 2100-01-01T00:00:00Z. */
export const defaultTimestampRange: TimestampRange = {
  min: EpochMicros.make(Date.UTC(1990, 0, 1) * 1000),
  max: EpochMicros.make(Date.UTC(2100, 0, 1) * 1000)
}

const microsPerUnit = { s: 1e6, ms: 1e3, us: 1, ns: 1e-3 } as const

/** The unit of a numeric `ts`, recognised by its magnitude (see `numericTimestampUnit`). */
export type NumericTimestampUnit = keyof typeof microsPerUnit

/**
 * Recognises the unit of a numeric timestamp by its magnitude, the way Telegraf's and
 * QuestDB's JSON users send them: below 1e11 it is seconds (until the year 5138),
 * below 1e14 milliseconds, below 1e17 microseconds, and below 1e20 nanoseconds.
 */
export const numericTimestampUnit = (value: number): NumericTimestampUnit | undefined => {
  const magnitude = Math.abs(value)
  if (magnitude < 1e11) return "s"
  if (magnitude < 1e14) return "ms"
  if (magnitude < 1e17) return "us"
  if (magnitude < 1e20) return "ns"
  return undefined
}

/**
 * Converts a numeric timestamp in the unit its magnitude implies (`numericTimestampUnit`) into
 * microseconds, without the plausibility check. Returns undefined when it fits no unit.
 */
export const numericTimestampToMicros = (value: number): number | undefined => {
  const unit = numericTimestampUnit(value)
  return unit === undefined ? undefined : Math.round(value * microsPerUnit[unit])
}

const isoPattern = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}(?::?\d{2})?)$/

/**
 * Parses an ISO-8601 instant with a zone (`2022-03-04T15:55:07Z`, `2022-03-04T16:55:07.123456+01:00`)
 * into microseconds, keeping up to six fractional digits (digits beyond the microsecond are truncated).
 * A string without a zone is rejected because its instant would depend on the reader's time zone.
 */
export const parseIsoInstant = (text: string): Either.Either<EpochMicros, string> => {
  const match = isoPattern.exec(text)
  if (match === null) {
    return Either.left("expected an ISO-8601 instant with a zone, such as 2022-03-04T15:55:07Z")
  }
  const [, year, month, day, hour, minute, second, fraction = "", zone = "Z"] = match
  const fields = [year, month, day, hour, minute, second].map(Number) as [number, number, number, number, number, number]
  const [y, mo, d, h, mi, s] = fields
  const millis = Date.UTC(y, mo - 1, d, h, mi, s)
  const check = new Date(millis)
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    return Either.left("the date or time of day does not exist")
  }
  let offsetMinutes = 0
  if (zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1
    const digits = zone.slice(1).replace(":", "")
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || "0"))
  }
  const fractionMicros = Number(fraction.padEnd(6, "0").slice(0, 6))
  return Either.right(EpochMicros.make((millis - offsetMinutes * 60_000) * 1000 + fractionMicros))
}

/**
 * Converts a reading's `ts` into microseconds: a number in seconds (the original unit, fractions
 * allowed), milliseconds, microseconds or nanoseconds recognised by magnitude, or an ISO-8601
 * string with a zone. Returns the reason when the value is not a timestamp or lies outside `range`.
 */
export const toEpochMicros = (
  value: unknown,
  range: TimestampRange = defaultTimestampRange
): Either.Either<EpochMicros, string> => {
  let micros: number
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return Either.left("expected a finite number")
    const converted = numericTimestampToMicros(value)
    if (converted === undefined) return Either.left("the number is too large for a timestamp in any unit")
    micros = converted
  } else if (typeof value === "string") {
    const parsed = parseIsoInstant(value)
    if (Either.isLeft(parsed)) return parsed
    micros = parsed.right
  } else {
    return Either.left("expected Unix seconds (a number) or an ISO-8601 string")
  }
  if (micros < range.min || micros >= range.max) {
    return Either.left(
      `${formatEpochMicros(micros)} lies outside the accepted range ` +
        `[${formatEpochMicros(range.min)}, ${formatEpochMicros(range.max)})`
    )
  }
  // A whole number inside `range` passes the brand's check, which `EpochMicros.make` would run
  // again for every reading.
  return Either.right(micros as EpochMicros)
}

const millisPerDay = 86_400_000

/** The date part (`2022-03-04T`) of the day formatted last; responses list instants in order, so it is often the same day. */
let lastDay = Number.NaN
let lastDayPrefix = ""

const twoDigits = (value: number) => (value < 10 ? `0${value}` : `${value}`)
const threeDigits = (value: number) => {
  if (value < 10) return `00${value}`
  if (value < 100) return `0${value}`
  return `${value}`
}

/**
 * Formats microseconds as ISO-8601 UTC, with six fractional digits only when the instant has them.
 * The output equals `Date.prototype.toISOString` (plus the microseconds), but the date part is
 * computed once per day, because large responses format tens of thousands of instants.
 */
export const formatEpochMicros = (micros: number): string => {
  const millis = Math.floor(micros / 1000)
  // 8.64e15 ms on either side of 1970 is the range of a JavaScript Date.
  if (!(Math.abs(millis) <= 8.64e15)) return `${micros} µs since 1970`
  const day = Math.floor(millis / millisPerDay)
  if (day !== lastDay) {
    const iso = new Date(day * millisPerDay).toISOString()
    lastDayPrefix = iso.slice(0, iso.indexOf("T") + 1)
    lastDay = day
  }
  const ofDay = millis - day * millisPerDay
  const hours = Math.floor(ofDay / 3_600_000)
  const minutes = Math.floor((ofDay % 3_600_000) / 60_000)
  const seconds = Math.floor((ofDay % 60_000) / 1000)
  const time = `${lastDayPrefix}${twoDigits(hours)}:${twoDigits(minutes)}:${twoDigits(seconds)}.${threeDigits(ofDay % 1000)}`
  const subMillis = micros - millis * 1000
  return subMillis === 0 ? `${time}Z` : `${time}${threeDigits(subMillis)}Z`
}
