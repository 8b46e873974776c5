import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { deadLetterHeaders } from "../../src/ingest/DeadLetter.ts"
import { matchesFilter, originalHeaders, type ReplayOptions } from "../../src/ingest/DeadLetterReplay.ts"

const letter = (headers: Record<string, string>) => ({
  key: null,
  value: Buffer.from("{}"),
  timestamp: "0",
  attributes: 0,
  offset: "0",
  headers: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, Buffer.from(value)]))
})

const sourceHeaders = {
  [deadLetterHeaders.topic]: "logger.sensor.ts",
  [deadLetterHeaders.partition]: "1",
  [deadLetterHeaders.offset]: "42",
  [deadLetterHeaders.errorTag]: "WriteRejected",
  [deadLetterHeaders.reason]: "check constraint"
}

const options = (overrides: Partial<ReplayOptions> = {}): ReplayOptions => ({
  deadLetterTopic: "logger.sensor.ts.dlq",
  groupId: "logger.job.replay-dlq",
  errorTags: [],
  sourcePartition: Option.none(),
  fromOffset: Option.none(),
  toOffset: Option.none(),
  dryRun: false,
  ...overrides
})

describe("matchesFilter", () => {
  it("matches every dead letter without a filter", () => {
    expect(matchesFilter(letter(sourceHeaders), options())).toBe(true)
  })

  it("filters by error tag", () => {
    expect(matchesFilter(letter(sourceHeaders), options({ errorTags: ["WriteRejected", "InvalidReading"] }))).toBe(true)
    expect(matchesFilter(letter(sourceHeaders), options({ errorTags: ["InvalidMessage"] }))).toBe(false)
  })

  it("filters by source partition", () => {
    expect(matchesFilter(letter(sourceHeaders), options({ sourcePartition: Option.some(1) }))).toBe(true)
    expect(matchesFilter(letter(sourceHeaders), options({ sourcePartition: Option.some(0) }))).toBe(false)
  })

  it.each([
    [42n, 42n, true],
    [0n, 41n, false],
    [43n, 100n, false],
    [40n, undefined, true],
    [undefined, 42n, true]
  ])("filters offset 42 by the range from %s to %s", (from, to, expected) => {
    const range = options({ fromOffset: Option.fromNullable(from), toOffset: Option.fromNullable(to) })
    expect(matchesFilter(letter(sourceHeaders), range)).toBe(expected)
  })

  it("leaves out a dead letter without a source offset when a range is given", () => {
    const { [deadLetterHeaders.offset]: _offset, ...withoutOffset } = sourceHeaders
    expect(matchesFilter(letter(withoutOffset), options({ fromOffset: Option.some(0n) }))).toBe(false)
  })
})

describe("originalHeaders", () => {
  it("removes the dlq headers and keeps the others", () => {
    const headers = letter({ ...sourceHeaders, traceparent: "00-abc-def-01" }).headers
    expect(Object.keys(originalHeaders(headers))).toEqual(["traceparent"])
    expect(String(originalHeaders(headers).traceparent)).toBe("00-abc-def-01")
  })
})
