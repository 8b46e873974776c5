import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import { isSensorId, SensorId } from "../../src/domain/SensorId.ts"

describe("isSensorId", () => {
  const isByDecoding = Schema.is(SensorId)

  it.each([
    0, -0, 1, 7, 1_646_409_307, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, Number.MAX_SAFE_INTEGER + 2, -1, 1.5,
    0.1, 1e300, -1e-300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, "7", null, undefined, true, [], {}, 7n
  ])("agrees with the schema for %s", (value) => {
    expect(isSensorId(value)).toBe(isByDecoding(value))
  })
})
