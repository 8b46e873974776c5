import { describe, expect, it } from "vitest"
import { Either } from "effect"
import { formatEpochMicros } from "../../src/domain/Timestamp.ts"
import {
  type InvalidTimestamp,
  makeTimestampParser,
  parseTimeZone,
  type TimeZone
} from "../../src/tools/replay/TimeColumn.ts"

const zone = (text: string): TimeZone => Either.getOrThrow(parseTimeZone(text))

const parser = (format: string, zoneText = "UTC") => Either.getOrThrow(makeTimestampParser(format, zone(zoneText)))

/** Parses one cell and formats the instant as ISO-8601 UTC, or throws the error's message. */
const parseIso = (format: string, value: string, zoneText = "UTC"): string =>
  Either.match(parser(format, zoneText)(value, 7), {
    onLeft: (error) => {
      throw new Error(error.message)
    },
    onRight: formatEpochMicros
  })

const parseError = (format: string, value: string, zoneText = "UTC"): InvalidTimestamp =>
  Either.match(parser(format, zoneText)(value, 7), {
    onLeft: (error) => error,
    onRight: (micros) => {
      throw new Error(`expected an error, got ${formatEpochMicros(micros)}`)
    }
  })

describe("iso format", () => {
  it.each([
    ["2015-02-02T13:19:00Z", "2015-02-02T13:19:00.000Z"],
    ["2015-02-02T14:19:00+01:00", "2015-02-02T13:19:00.000Z"],
    ["2015-02-02 08:49:00-0430", "2015-02-02T13:19:00.000Z"],
    ["2015-02-02t13:19:00z", "2015-02-02T13:19:00.000Z"],
    ["2015-02-02T13:19:00.123456789Z", "2015-02-02T13:19:00.123456Z"],
    ["2015-02-02T13:19:00,5Z", "2015-02-02T13:19:00.500Z"],
    ["2015-02-02T13:19Z", "2015-02-02T13:19:00.000Z"],
    ["2015-02-02", "2015-02-02T00:00:00.000Z"],
    ["  2015-02-02 13:19:00  ", "2015-02-02T13:19:00.000Z"]
  ])("parses %s", (value, expected) => {
    expect(parseIso("iso", value)).toBe(expected)
  })

  it("reads values without a zone in the given zone", () => {
    expect(parseIso("iso", "2015-02-02 14:19:00", "+01:00")).toBe("2015-02-02T13:19:00.000Z")
    expect(parseIso("iso", "2015-02-02 07:49:00", "-0530")).toBe("2015-02-02T13:19:00.000Z")
    expect(parseIso("iso", "2015-07-02 15:19:00", "Europe/Brussels")).toBe("2015-07-02T13:19:00.000Z")
  })

  it("keeps a value's own offset over the given zone", () => {
    expect(parseIso("iso", "2015-02-02T13:19:00Z", "Europe/Brussels")).toBe("2015-02-02T13:19:00.000Z")
    expect(parseIso("iso", "2015-02-02T15:19:00+02:00", "-0500")).toBe("2015-02-02T13:19:00.000Z")
  })

  it.each([
    ["02/02/2015 13:19", "expected ISO-8601"],
    ["2015-02-30T00:00:00", "day 30 does not exist in 2015-02, which has 28 days"],
    ["2015-13-01T00:00:00", "month 13 is out of range 1 to 12"],
    ["2015-02-02T24:00:00", "hour 24 is out of range 0 to 23"],
    ["2015-02-02T13:60:00", "minute 60 is out of range 0 to 59"],
    ["2016-12-31T23:59:60Z", "second 60 is out of range 0 to 59"],
    ["2015-02-02T13:19:00+25:00", "the offset's hours must be 00 to 23"]
  ])("rejects %s", (value, reason) => {
    expect(parseError("iso", value).reason).toContain(reason)
  })

  it("accepts February 29 of a leap year only", () => {
    expect(parseIso("iso", "2016-02-29")).toBe("2016-02-29T00:00:00.000Z")
    expect(parseError("iso", "2015-02-29").reason).toContain("day 29 does not exist in 2015-02")
  })
})

describe("unix formats", () => {
  it.each([
    ["unix", "1422883140", "2015-02-02T13:19:00.000Z"],
    ["unix", "1422883140.5", "2015-02-02T13:19:00.500Z"],
    ["unix", "1422883140.123456", "2015-02-02T13:19:00.123456Z"],
    ["unix", "1422883140.1234569", "2015-02-02T13:19:00.123456Z"],
    ["unix", "1.42288314e9", "2015-02-02T13:19:00.000Z"],
    ["unix", "-1", "1969-12-31T23:59:59.000Z"],
    ["unix-ms", "1422883140000", "2015-02-02T13:19:00.000Z"],
    ["unix-ms", "1422883140123.456", "2015-02-02T13:19:00.123456Z"]
  ])("%s parses %s", (format, value, expected) => {
    expect(parseIso(format, value)).toBe(expected)
  })

  it("ignores the time zone", () => {
    expect(parseIso("unix", "1422883140", "Europe/Brussels")).toBe("2015-02-02T13:19:00.000Z")
  })

  it.each([
    ["unix", "", "expected seconds since 1970-01-01T00:00:00Z"],
    ["unix", "2015-02-02", "expected seconds since 1970-01-01T00:00:00Z"],
    ["unix-ms", "12abc", "expected milliseconds since 1970-01-01T00:00:00Z"],
    ["unix", "99999999999999", "too far from 1970"]
  ])("%s rejects %j", (format, value, reason) => {
    expect(parseError(format, value).reason).toContain(reason)
  })
})

describe("strftime patterns", () => {
  it.each([
    ["%Y-%m-%d %H:%M:%S", "2015-02-02 13:19:00", "2015-02-02T13:19:00.000Z"],
    ["%Y-%m-%d %H:%M:%S.%f", "2015-02-02 13:19:00.25", "2015-02-02T13:19:00.250Z"],
    ["%Y-%m-%d %H:%M:%S.%f", "2015-02-02 13:19:00.123456789", "2015-02-02T13:19:00.123456Z"],
    ["%d/%m/%Y %H:%M", "02/02/2015 13:19", "2015-02-02T13:19:00.000Z"],
    ["%d/%m/%Y %H:%M", "2/2/2015 13:19", "2015-02-02T13:19:00.000Z"],
    ["%m/%d/%y %I:%M %p", "02/02/15 01:19 PM", "2015-02-02T13:19:00.000Z"],
    ["%m/%d/%y %I:%M %p", "02/02/15 12:05 am", "2015-02-02T00:05:00.000Z"],
    ["%m/%d/%y", "02/02/69", "1969-02-02T00:00:00.000Z"],
    ["%d %b %Y %T", "02 Feb 2015 13:19:00", "2015-02-02T13:19:00.000Z"],
    ["%B %e, %Y", "February  2, 2015", "2015-02-02T00:00:00.000Z"],
    ["%FT%T%z", "2015-02-02T14:19:00+0100", "2015-02-02T13:19:00.000Z"],
    ["%Y%m%d%H%M%S", "20150202131900", "2015-02-02T13:19:00.000Z"],
    ["%Y-%m-%d %H:%M:%S 100%%", "2015-02-02 13:19:00 100%", "2015-02-02T13:19:00.000Z"],
    ["[%Y.%m.%d] (%H)", "[2015.02.02] (13)", "2015-02-02T13:00:00.000Z"]
  ])("%s parses %s", (format, value, expected) => {
    expect(parseIso(format, value)).toBe(expected)
  })

  it("reads patterns without %z in the given zone", () => {
    expect(parseIso("%Y-%m-%d %H:%M:%S", "2015-02-02 14:19:00", "+01:00")).toBe("2015-02-02T13:19:00.000Z")
  })

  it.each([
    ["%Y-%m-%d %H:%M:%S", "2015-02-02T13:19:00", 'the value does not match the pattern "%Y-%m-%d %H:%M:%S"'],
    ["%Y-%m-%d %H:%M:%S", "2015-02-02 13:19", "does not match"],
    ["%d/%m/%Y", "31/04/2015", "day 31 does not exist in 2015-04, which has 30 days"],
    ["%m/%d/%Y %I:%M %p", "02/02/2015 13:19 PM", "hour 13 is out of range 1 to 12 for %I"]
  ])("%s rejects %s", (format, value, reason) => {
    expect(parseError(format, value).reason).toContain(reason)
  })

  it.each([
    ["%Y-%m-%d %q", "unsupported directive %q"],
    ["%Y-%m-%d %", "lone %"],
    ["%Y-%Y-%m-%d", "sets the year twice (at %Y)"],
    ["%y %Y %m %d", "sets the year twice"],
    ["%m-%d %H", "has no year"],
    ["%Y-%d", "has no month"],
    ["%Y-%m", "has no day"],
    ["%Y-%m-%d %I:%M", "%I (12-hour clock) and %p (AM or PM) must be used together"],
    ["%Y-%m-%d %H %I %p", "sets the hour twice"],
    ["seconds", "not a format name and contains no % directive"]
  ])("rejects the pattern %s", (format, reason) => {
    const result = makeTimestampParser(format, zone("UTC"))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left._tag).toBe("InvalidTimeFormat")
      expect(result.left.reason).toContain(reason)
      expect(result.left.message).toContain(`invalid time format ${JSON.stringify(format)}`)
      expect(result.left.message).toContain("Use iso, unix, unix-ms or a strftime pattern")
    }
  })
})

describe("time zones", () => {
  it.each([
    ["UTC", 0],
    ["z", 0],
    ["+01:00", 60],
    ["-0530", -330],
    ["+02", 120],
    ["-00:30", -30]
  ])("parses the fixed offset %s", (text, minutes) => {
    const parsed = zone(text)
    expect(parsed._tag).toBe("FixedOffset")
    if (parsed._tag === "FixedOffset") expect(parsed.offsetMinutes).toBe(minutes)
  })

  it("parses an IANA name", () => {
    const parsed = zone("Europe/Brussels")
    expect(parsed._tag).toBe("Iana")
    expect(parsed.name).toBe("Europe/Brussels")
  })

  it.each([
    ["Mars/Olympus_Mons", "not a fixed offset nor a time zone name known to Intl"],
    ["+24:00", "the offset's hours must be 00 to 23"],
    ["+01:75", "its minutes 00 to 59"]
  ])("rejects %s", (text, reason) => {
    const result = parseTimeZone(text)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.reason).toContain(reason)
      expect(result.left.message).toContain(`invalid time zone ${JSON.stringify(text)}`)
      expect(result.left.message).toContain("Use UTC, a fixed offset such as +01:00 or -0530")
    }
  })

  // Europe/Brussels: CET (+01:00) until 2021-03-28 02:00 local, then CEST (+02:00) until 2021-10-31 03:00 local.
  it.each([
    ["2021-03-28 01:59:59", "2021-03-28T00:59:59.000Z"],
    ["2021-03-28 03:00:00", "2021-03-28T01:00:00.000Z"],
    ["2021-07-01 12:00:00", "2021-07-01T10:00:00.000Z"],
    ["2021-10-31 01:59:59", "2021-10-30T23:59:59.000Z"],
    ["2021-10-31 03:00:00", "2021-10-31T02:00:00.000Z"],
    ["2021-12-01 12:00:00", "2021-12-01T11:00:00.000Z"]
  ])("Europe/Brussels maps %s around the changes", (value, expected) => {
    expect(parseIso("iso", value, "Europe/Brussels")).toBe(expected)
  })

  it("rejects a local time in the spring gap", () => {
    const error = parseError("%Y-%m-%d %H:%M:%S", "2021-03-28 02:30:00", "Europe/Brussels")
    expect(error.reason).toBe(
      "this local time does not exist in Europe/Brussels, because the clocks skip it at a daylight-saving change"
    )
  })

  it("takes the earlier instant of an ambiguous autumn time", () => {
    expect(parseIso("iso", "2021-10-31 02:30:00", "Europe/Brussels")).toBe("2021-10-31T00:30:00.000Z")
    expect(parseIso("iso", "2021-10-31 02:59:59.5", "Europe/Brussels")).toBe("2021-10-31T00:59:59.500Z")
  })

  it("resolves every minute of a day with a change", () => {
    const parse = parser("%Y-%m-%d %H:%M", "America/New_York")
    // 2021-11-07: EDT (-04:00) until 02:00 local, then EST (-05:00); 01:xx occurs twice.
    let previous = -Infinity
    for (let minute = 0; minute < 24 * 60; minute++) {
      const hour = String(Math.floor(minute / 60)).padStart(2, "0")
      const value = `2021-11-07 ${hour}:${String(minute % 60).padStart(2, "0")}`
      const micros = Either.getOrThrow(parse(value, minute + 2))
      expect(micros, value).toBeGreaterThan(previous)
      previous = micros
    }
    expect(formatEpochMicros(Either.getOrThrow(parse("2021-11-07 01:30", 1)))).toBe("2021-11-07T05:30:00.000Z")
    expect(formatEpochMicros(Either.getOrThrow(parse("2021-11-07 02:30", 1)))).toBe("2021-11-07T07:30:00.000Z")
  })

  it("resolves a southern-hemisphere zone", () => {
    // Australia/Sydney: AEDT (+11:00) in January, AEST (+10:00) in July; clocks skip 02:00-03:00 on 2021-10-03.
    expect(parseIso("iso", "2021-01-15 12:00:00", "Australia/Sydney")).toBe("2021-01-15T01:00:00.000Z")
    expect(parseIso("iso", "2021-07-15 12:00:00", "Australia/Sydney")).toBe("2021-07-15T02:00:00.000Z")
    expect(parseError("iso", "2021-10-03 02:15:00", "Australia/Sydney").reason).toContain("does not exist")
  })
})

describe("InvalidTimestamp", () => {
  it("names the line, the value, the format and the zone", () => {
    const error = parseError("%d/%m/%Y", "2015-02-02", "Europe/Brussels")
    expect(error.line).toBe(7)
    expect(error.value).toBe("2015-02-02")
    expect(error.message).toBe(
      'line 7: invalid timestamp "2015-02-02" for time format "%d/%m/%Y" in time zone Europe/Brussels: ' +
        'the value does not match the pattern "%d/%m/%Y"'
    )
  })

  it("shortens a long value", () => {
    const error = parseError("iso", "x".repeat(200))
    expect(error.message).toContain(`"${"x".repeat(76)}..."`)
    expect(error.value).toHaveLength(200)
  })
})
