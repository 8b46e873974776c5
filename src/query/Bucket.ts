import { ParseResult, Schema } from "effect"
import { addDays, daysBetween, type LocalDate, localDateAt, startOfLocalDay } from "./TimeZone.ts"

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** Smallest and largest fixed bucket widths, in seconds. */
export const bucketLimits = { min: 1, max: 366 * 86_400 } as const

/** The calendar buckets: local days, weeks starting on Monday, and months. */
export const calendarUnits = ["day", "week", "month"] as const
export type CalendarUnit = (typeof calendarUnits)[number]

/** A bucket width: fixed seconds, or a calendar unit in a time zone. */
export type Bucket = number | CalendarUnit

/**
 * `bucket`: a fixed width or a calendar unit. A fixed width is a number with a unit (`90s`,
 * `30m`, `1h`, `7d`) or plain seconds (`1800`) and decodes to seconds. `day`, `week` and `month`
 * are calendar buckets in `time_zone`.
 */
export const BucketParam = Schema.transformOrFail(
  Schema.String,
  Schema.Union(Schema.Literal(...calendarUnits), Schema.Int),
  {
    strict: true,
    decode: (text, _, ast) => {
      const trimmed = text.trim()
      if ((calendarUnits as ReadonlyArray<string>).includes(trimmed)) return ParseResult.succeed(trimmed as CalendarUnit)
      const match = /^(\d+)\s*([smhd]?)$/.exec(trimmed)
      const seconds = match === null ? Number.NaN : Number(match[1]) * (unitSeconds[match[2] || "s"] ?? Number.NaN)
      if (!Number.isSafeInteger(seconds) || seconds < bucketLimits.min || seconds > bucketLimits.max) {
        return ParseResult.fail(
          new ParseResult.Type(
            ast,
            text,
            `${JSON.stringify(text)} is not a bucket: expected a width from 1s to 366d (90s, 30m, 1h, 1d) or day, week, month`
          )
        )
      }
      return ParseResult.succeed(seconds)
    },
    encode: (bucket) => ParseResult.succeed(typeof bucket === "number" ? `${bucket}s` : bucket)
  }
).annotations({
  identifier: "Bucket",
  description: "Bucket width: 90s, 30m, 1h, 1d or seconds (aligned to UTC), or day, week (from Monday), month in time_zone"
})

/** Formats a bucket as the API names it: `90s`, `30m`, `1h`, `2d`, or the calendar unit. */
export const formatBucket = (bucket: Bucket): string => {
  if (typeof bucket === "string") return bucket
  if (bucket % 86_400 === 0) return `${bucket / 86_400}d`
  if (bucket % 3600 === 0) return `${bucket / 3600}h`
  if (bucket % 60 === 0) return `${bucket / 60}m`
  return `${bucket}s`
}

/** Fixed widths that `max_data_points` and the too-many-points message pick from, in seconds. */
const niceWidths = [
  1, 2, 5, 10, 15, 30,
  60, 120, 300, 600, 900, 1800,
  3600, 7200, 10_800, 21_600, 43_200,
  86_400, 172_800, 604_800, 2_592_000, 7_776_000, bucketLimits.max
]

const floorDiv = (a: number, b: number) => Math.floor(a / b)

const localDateOfMicros = (zone: string, micros: number): LocalDate => localDateAt(zone, Math.floor(micros / 1000))

const monthIndex = (date: LocalDate) => date.year * 12 + (date.month - 1)

/** Returns the Monday on or before `date`. */
const mondayOf = (date: LocalDate): LocalDate => {
  const weekday = new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay()
  return addDays(date, -((weekday + 6) % 7))
}

/**
 * Counts the buckets that overlap `[from, to)` (microseconds), without building them, so a
 * request that is too large can be rejected before any work.
 */
export const countBuckets = (bucket: Bucket, zone: string, from: number, to: number): number => {
  if (typeof bucket === "number") {
    const width = bucket * 1e6
    return floorDiv(to - 1, width) - floorDiv(from, width) + 1
  }
  const first = localDateOfMicros(zone, from)
  const last = localDateOfMicros(zone, to - 1)
  switch (bucket) {
    case "day":
      return daysBetween(first, last) + 1
    case "week":
      return daysBetween(mondayOf(first), mondayOf(last)) / 7 + 1
    case "month":
      return monthIndex(last) - monthIndex(first) + 1
  }
}

/**
 * Returns the start of every bucket that overlaps `[from, to)`, in microseconds, ascending, and
 * at most `limit` of them. The first may begin before `from`, and the last is clipped at `to`.
 */
export const bucketStarts = (bucket: Bucket, zone: string, from: number, to: number, limit: number): Array<number> => {
  const starts: Array<number> = []
  if (typeof bucket === "number") {
    const width = bucket * 1e6
    for (let start = floorDiv(from, width) * width; start < to && starts.length < limit; start += width) starts.push(start)
    return starts
  }
  let date = localDateOfMicros(zone, from)
  if (bucket === "week") date = mondayOf(date)
  if (bucket === "month") date = { ...date, day: 1 }
  for (;;) {
    const start = startOfLocalDay(zone, date) * 1000
    if (start >= to || starts.length >= limit) return starts
    starts.push(start)
    date = bucket === "day"
      ? addDays(date, 1)
      : bucket === "week"
      ? addDays(date, 7)
      : date.month === 12
      ? { year: date.year + 1, month: 1, day: 1 }
      : { year: date.year, month: date.month + 1, day: 1 }
  }
}

/**
 * Returns the start of the first of the last `count` buckets that overlap a range ending at `to`
 * (microseconds, exclusive). An open range that contains too many buckets starts there, so it keeps
 * its most recent ones. It computes the start directly, because walking millions of buckets from
 * an old first reading would take seconds.
 */
export const startOfLastBuckets = (bucket: Bucket, zone: string, to: number, count: number): number => {
  if (typeof bucket === "number") {
    const width = bucket * 1e6
    return (floorDiv(to - 1, width) - (count - 1)) * width
  }
  const last = localDateOfMicros(zone, to - 1)
  switch (bucket) {
    case "day":
      return startOfLocalDay(zone, addDays(last, -(count - 1))) * 1000
    case "week":
      return startOfLocalDay(zone, addDays(mondayOf(last), -7 * (count - 1))) * 1000
    case "month": {
      const index = monthIndex(last) - (count - 1)
      return startOfLocalDay(zone, { year: Math.floor(index / 12), month: (index % 12 + 12) % 12 + 1, day: 1 }) * 1000
    }
  }
}

/** The smallest width of `niceWidths` whose buckets over `[from, to)` number at most `maxPoints`. */
export const fittingWidth = (from: number, to: number, maxPoints: number): number | undefined =>
  niceWidths.find((width) => countBuckets(width, "UTC", from, to) <= maxPoints)

/**
 * A bucket that fits `maxPoints` over `[from, to)`, for the message of a rejected request: the
 * next calendar unit for a calendar bucket when it fits, otherwise the smallest fitting width.
 */
export const suggestBucket = (bucket: Bucket, zone: string, from: number, to: number, maxPoints: number): Bucket | undefined => {
  if (typeof bucket === "string") {
    for (const unit of calendarUnits.slice(calendarUnits.indexOf(bucket) + 1)) {
      if (countBuckets(unit, zone, from, to) <= maxPoints) return unit
    }
  }
  return fittingWidth(from, to, maxPoints)
}
