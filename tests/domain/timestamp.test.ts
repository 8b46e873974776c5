import { Either, Option } from "effect"
import { describe, expect, it } from "vitest"
import { defaultTimestampRange, formatEpochMicros, parseIsoInstant, toEpochMicros } from "../../src/domain/Timestamp.ts"

const iso = (value: unknown) => Either.map(toEpochMicros(value), formatEpochMicros)

describe("toEpochMicros", () => {
  it.each([
    [1646409307, "2022-03-04T15:55:07.000Z"],
    [1646409307.5, "2022-03-04T15:55:07.500Z"],
    [1646409307123, "2022-03-04T15:55:07.123Z"],
    [1646409307123456, "2022-03-04T15:55:07.123456Z"],
    [1646409307123456789, "2022-03-04T15:55:07.123457Z"],
    ["2022-03-04T15:55:07Z", "2022-03-04T15:55:07.000Z"],
    ["2022-03-04T16:55:07.25+01:00", "2022-03-04T15:55:07.250Z"],
    ["2022-03-04 10:55:07.000001-0500", "2022-03-04T15:55:07.000001Z"]
  ])("decodes %s", (input, expected) => {
    expect(iso(input)).toEqual(Either.right(expected))
  })

  it("rejects 99999999999999 instead of storing the year 5138", () => {
    const reason = Option.getOrThrow(Either.getLeft(toEpochMicros(99999999999999)))
    expect(reason).toContain("5138-11-16")
    expect(reason).toContain("outside the accepted range")
  })

  it("rejects instants before the range", () => {
    expect(Either.isLeft(toEpochMicros(0))).toBe(true)
    expect(Either.isLeft(toEpochMicros(-1646409307))).toBe(true)
  })

  it("accepts the range's bounds as half-open", () => {
    expect(Either.isRight(toEpochMicros(defaultTimestampRange.min / 1e6))).toBe(true)
    expect(Either.isLeft(toEpochMicros(defaultTimestampRange.max / 1e6))).toBe(true)
  })

  it.each([Number.NaN, Infinity, "yesterday", "2022-03-04T15:55:07", "2022-02-30T00:00:00Z", null, true, {}])(
    "rejects %s",
    (input) => {
      expect(Either.isLeft(toEpochMicros(input))).toBe(true)
    }
  )

  it("says why a zone-less string is rejected", () => {
    expect(parseIsoInstant("2022-03-04T15:55:07")).toEqual(
      Either.left("expected an ISO-8601 instant with a zone, such as 2022-03-04T15:55:07Z")
    )
  })
})

describe("formatEpochMicros", () => {
  it("keeps microseconds", () => {
    expect(formatEpochMicros(1646409307000001)).toBe("2022-03-04T15:55:07.000001Z")
  })
  it("writes whole milliseconds without extra digits", () => {
    expect(formatEpochMicros(1646409307000000)).toBe("2022-03-04T15:55:07.000Z")
  })

  it("matches toISOString across days and years", () => {
    // Instants in order and out of order, before 1970, across midnight, and at the ends of Date's range.
    const millis = [
      0, -1, 1, 86_399_999, 86_400_000, -86_400_000, -86_400_001, 951_782_400_000, 1_646_409_307_123,
      1_646_351_999_999, 1_646_352_000_000, -62_198_755_200_000, 253_402_300_799_999, 253_402_300_800_000,
      8.64e15, -8.64e15
    ]
    let state = 7
    for (let index = 0; index < 2000; index++) {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
      millis.push((state - 1_073_741_824) * 8_000 + (index % 997))
    }
    for (const value of millis) {
      expect(formatEpochMicros(value * 1000)).toBe(new Date(value).toISOString())
    }
  })

  it("names an instant outside Date's range", () => {
    expect(formatEpochMicros(8.64e18 + 1000)).toBe(`${8.64e18 + 1000} µs since 1970`)
    expect(formatEpochMicros(Number.NaN)).toBe("NaN µs since 1970")
  })
})
