import { ParseResult, Schema } from "effect"

/** A calendar date: `month` 1 to 12, `day` 1 to 31. */
export interface LocalDate {
  readonly year: number
  readonly month: number
  readonly day: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

const formatterFor = (zone: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(zone)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric"
    })
    formatters.set(zone, formatter)
  }
  return formatter
}

/** Returns the wall-clock fields of instant `millis` in `zone`, as a UTC timestamp in milliseconds. */
const wallClockMillis = (zone: string, millis: number): number => {
  const fields: Record<string, number> = {}
  for (const part of formatterFor(zone).formatToParts(new Date(millis))) {
    if (part.type !== "literal") fields[part.type] = Number(part.value)
  }
  return Date.UTC(fields.year!, fields.month! - 1, fields.day!, fields.hour!, fields.minute!, fields.second!)
}

/** The offset of `zone` from UTC at instant `millis`, in milliseconds (east positive). */
export const offsetMillis = (zone: string, millis: number): number =>
  wallClockMillis(zone, millis) - Math.floor(millis / 1000) * 1000

/** Returns the calendar date in `zone` at instant `millis`. */
export const localDateAt = (zone: string, millis: number): LocalDate => {
  const wall = new Date(wallClockMillis(zone, millis))
  return { year: wall.getUTCFullYear(), month: wall.getUTCMonth() + 1, day: wall.getUTCDate() }
}

/** Returns the date `days` after `date` (a negative count goes back). */
export const addDays = (date: LocalDate, days: number): LocalDate => {
  const shifted = new Date(Date.UTC(date.year, date.month - 1, date.day + days))
  return { year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() }
}

/** Days from `a` to `b` (positive when `b` is later). */
export const daysBetween = (a: LocalDate, b: LocalDate): number =>
  Math.round((Date.UTC(b.year, b.month - 1, b.day) - Date.UTC(a.year, a.month - 1, a.day)) / 86_400_000)

/**
 * Returns the first instant of `date` in `zone`, in milliseconds. That is its local midnight,
 * or the instant of the change where a daylight-saving change skips midnight.
 */
export const startOfLocalDay = (zone: string, date: LocalDate): number => {
  const midnightAsUtc = Date.UTC(date.year, date.month - 1, date.day)
  const first = offsetMillis(zone, midnightAsUtc)
  const second = offsetMillis(zone, midnightAsUtc - first)
  const candidates = [midnightAsUtc - first, midnightAsUtc - second].sort((a, b) => a - b)
  for (const candidate of candidates) {
    if (wallClockMillis(zone, candidate) === midnightAsUtc) return candidate
  }
  // Midnight does not exist that day. The clock jumped forward from the smaller offset, so
  // midnight by that offset is the instant of the jump.
  return midnightAsUtc - Math.min(first, second)
}

const isKnownZone = (name: string): boolean => {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name)) return false
  try {
    formatterFor(name)
    return true
  } catch {
    return false
  }
}

/** `time_zone`: an IANA time zone name such as `Europe/Berlin` or `UTC`, checked against the ICU data of the runtime. */
export const TimeZoneParam = Schema.String.pipe(
  Schema.filter((name, _, ast) =>
    isKnownZone(name)
      ? undefined
      : new ParseResult.Type(ast, name, `${JSON.stringify(name)} is not a time zone: expected an IANA name such as Europe/Berlin or UTC`)
  ),
  Schema.annotations({ identifier: "TimeZone", description: "IANA time zone name, such as Europe/Berlin; default UTC" })
)
