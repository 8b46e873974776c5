import { Either, ParseResult, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { InstantParam, limitParam, maxDataPointsParam, pageParam, pageSize, SensorIdsParam } from "../../src/query/QueryParams.ts"

const decodeInstant = Schema.decodeUnknownEither(InstantParam)
const decodeSensorIds = Schema.decodeUnknownEither(SensorIdsParam)
const errorText = (result: Either.Either<unknown, ParseResult.ParseError>) =>
  Either.isLeft(result) ? ParseResult.TreeFormatter.formatErrorSync(result.left) : ""

describe("InstantParam", () => {
  it.each([
    ["1646409307", 1646409307000000],
    ["1646409307.5", 1646409307500000],
    ["1646409307123", 1646409307123000],
    ["1646409307123456", 1646409307123456],
    ["0", 0],
    ["2022-03-04T15:55:07Z", 1646409307000000],
    ["2022-03-04T16:55:07+01:00", 1646409307000000]
  ])("decodes %s", (text, micros) => {
    expect(decodeInstant(text)).toEqual(Either.right(micros))
  })

  it("decodes now and now minus a duration", () => {
    const before = Date.now() * 1000
    const now = decodeInstant("now")
    const hourAgo = decodeInstant("now-1h")
    const after = Date.now() * 1000
    expect(Either.isRight(now)).toBe(true)
    expect(Either.isRight(hourAgo)).toBe(true)
    const nowMicros = Either.getOrThrow(now)
    const hourAgoMicros = Either.getOrThrow(hourAgo)
    expect(nowMicros).toBeGreaterThanOrEqual(before)
    expect(nowMicros).toBeLessThanOrEqual(after)
    expect(hourAgoMicros).toBeGreaterThanOrEqual(before - 3600e6)
    expect(hourAgoMicros).toBeLessThanOrEqual(after - 3600e6)
  })

  it("rejects now with an unknown unit", () => {
    expect(Either.isLeft(decodeInstant("now-1y"))).toBe(true)
  })

  it.each([
    ["yesterday", "is not an instant: expected Unix seconds (1646409307), an ISO-8601 instant with a zone (2022-03-04T15:55:07Z), now, or now-<duration> (now-1h)"],
    ["1e3", "is not an instant: expected Unix seconds"],
    ["2022-13-45T00:00:00Z", "is not an instant: month 13 does not exist; months run from 01 to 12"],
    ["2022-00-10T00:00:00Z", "is not an instant: month 00 does not exist"],
    ["2022-02-29T00:00:00Z", "is not an instant: the date 2022-02-29 does not exist, because February 2022 has 28 days"],
    ["2022-04-31T00:00:00+02:00", "is not an instant: the date 2022-04-31 does not exist, because April 2022 has 30 days"],
    ["2022-03-04T24:00:00Z", "is not an instant: the time of day 24:00:00 does not exist; expected 00:00:00 to 23:59:59"],
    ["2022-03-04T15:60:00Z", "is not an instant: the time of day 15:60:00 does not exist"],
    ["2022-03-04T15:55:07", "is not an instant: it has no zone; add Z for UTC or an offset such as +01:00"],
    ["2022-03-04T15:55:07 01:00", `is not an instant: its offset " 01:00" lost its + sign; write the + as %2B in a URL`],
    ["2022-03-04T15:55:07CET", `is not an instant: the zone "CET" is not Z or an offset such as +01:00`],
    ["2022-03-04T15:55:07.1234567890Z", "is not an instant: its fraction of a second has 10 digits; at most 9 are accepted"],
    ["now-1y", "is not an instant: a relative instant is now, or now- followed by a whole number of up to 9 digits and a unit s, m, h, d or w"],
    ["now-9999999999s", "is not an instant: a relative instant is now, or now- followed by"]
  ])("rejects %s and says why", (text, expected) => {
    const result = decodeInstant(text)
    expect(Either.isLeft(result)).toBe(true)
    expect(errorText(result)).toContain(`${JSON.stringify(text)} ${expected}`)
  })

  it("accepts the last day of February in a leap year", () => {
    expect(decodeInstant("2024-02-29T00:00:00Z")).toEqual(Either.right(Date.UTC(2024, 1, 29) * 1000))
  })

  it.each(["100000000000000000000", "-62135596800", "now-99999w", "now-999999999d"])("rejects %s as out of range", (text) => {
    const result = decodeInstant(text)
    expect(Either.isLeft(result)).toBe(true)
    expect(errorText(result)).toContain(`"${text}" is out of range: an instant must lie between 1684-`)
  })

  it("accepts the longest relative range that fits", () => {
    expect(Either.isRight(decodeInstant("now-15250w"))).toBe(true)
  })
})

describe("SensorIdsParam", () => {
  it("decodes a comma-separated list", () => {
    expect(decodeSensorIds("1, 2")).toEqual(Either.right([1, 2]))
  })

  it("decodes a repeated parameter", () => {
    expect(decodeSensorIds(["1", "2,3"])).toEqual(Either.right([1, 2, 3]))
  })

  it("rejects an id that is not a number", () => {
    expect(Either.isLeft(decodeSensorIds("1,x"))).toBe(true)
  })

  it("rejects a negative id", () => {
    expect(Either.isLeft(decodeSensorIds("-1"))).toBe(true)
  })
})

describe("integer parameters", () => {
  const parameters = [
    ["page", pageParam(9007199254740), "a page number", 9007199254740],
    ["page_size", pageSize(1000), "a page size", 1000],
    ["limit", limitParam(10_000), "a limit", 10_000],
    ["max_data_points", maxDataPointsParam(10_000), "a number of points", 10_000]
  ] as const

  describe.each(parameters)("%s", (_name, schema, noun, max) => {
    const decode = Schema.decodeUnknownEither(schema)

    it.each([["1", 1], ["007", 7], [String(max), max]])("decodes %s", (text, value) => {
      expect(decode(text)).toEqual(Either.right(value))
    })

    it.each(["0", String(max + 1), "99999999999999999999", "1e3", "5.0", "0x10", "-1", " 5", "+5", ""])("rejects %j", (text) => {
      const result = decode(text)
      expect(Either.isLeft(result)).toBe(true)
      expect(errorText(result)).toContain(`${JSON.stringify(text)} is not ${noun}: expected an integer from 1 to ${max}, in decimal digits`)
    })
  })
})

describe("sensor id limits", () => {
  it("accepts the largest safe integer", () => {
    expect(decodeSensorIds("9007199254740991")).toEqual(Either.right([9007199254740991]))
  })

  it("names the maximum above it", () => {
    const result = decodeSensorIds("1,9007199254740993")
    expect(Either.isLeft(result)).toBe(true)
    expect(errorText(result)).toContain(`"9007199254740993" is not a sensor id: expected an integer from 0 to 9007199254740991`)
  })
})
