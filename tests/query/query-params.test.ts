import { Either, ParseResult, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { InstantParam, SensorIdsParam } from "../../src/query/QueryParams.ts"

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

  it("rejects a word and quotes it", () => {
    const result = decodeInstant("yesterday")
    expect(Either.isLeft(result)).toBe(true)
    expect(errorText(result)).toContain(`"yesterday" is not Unix seconds`)
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
