import { describe, expect, it } from "vitest"
import { mergeRanges, planAggregate, type ReadModelState, subtractRanges } from "../../src/query/AggregatePlan.ts"
import { bucketStarts, countBuckets, startOfLastBuckets, suggestBucket } from "../../src/query/Bucket.ts"
import { fillSeries } from "../../src/query/GapFill.ts"
import { startOfLocalDay } from "../../src/query/TimeZone.ts"

const minute = 60e6
const hour = 3600e6
const iso = (micros: number) => new Date(micros / 1000).toISOString()

const model = (name: string, widthMicros: number, watermarkMicros: number, invalidated: Array<[number, number]> = []): ReadModelState => ({
  name,
  widthMicros,
  watermarkMicros,
  invalidated
})

describe("planAggregate", () => {
  const models = [model("m", minute, 10 * hour), model("h", hour, 10 * hour)]

  it("uses the coarsest model that divides every boundary", () => {
    const starts = [0, 2 * hour, 4 * hour]
    const plan = planAggregate(0, 6 * hour, starts, models)
    expect(plan.readModel?.name).toBe("h")
    expect(plan.readModelRanges).toEqual([[0, 6 * hour]])
    expect(plan.rawRanges).toEqual([])
  })

  it("reads unaligned edges and the part after the watermark raw", () => {
    const from = 90 * 1e6
    const plan = planAggregate(from, 12 * hour, [0, hour * 6], models)
    expect(plan.readModel?.name).toBe("h")
    expect(plan.readModelRanges).toEqual([[hour, 10 * hour]])
    expect(plan.rawRanges).toEqual([[from, hour], [10 * hour, 12 * hour]])
  })

  it("falls back to a finer model for half-hour boundaries", () => {
    const plan = planAggregate(0, 2 * hour, [0, 30 * minute, hour, 90 * minute], models)
    expect(plan.readModel?.name).toBe("m")
  })

  it("reads invalidated ranges raw, widened to the model's buckets", () => {
    const plan = planAggregate(0, 6 * hour, [0], [model("h", hour, 10 * hour, [[2 * hour + 5, 3 * hour + 10]])])
    expect(plan.readModelRanges).toEqual([[0, 2 * hour], [4 * hour, 6 * hour]])
    expect(plan.rawRanges).toEqual([[2 * hour, 4 * hour]])
  })

  it("reads everything raw when nothing is materialised", () => {
    const plan = planAggregate(0, 6 * hour, [0], [model("h", hour, -9007199254740991)])
    expect(plan.readModel).toBeUndefined()
    expect(plan.rawRanges).toEqual([[0, 6 * hour]])
  })
})

describe("range arithmetic", () => {
  it("merges touching ranges", () => {
    expect(mergeRanges([[5, 7], [0, 2], [2, 3]])).toEqual([[0, 3], [5, 7]])
  })

  it("subtracts holes", () => {
    expect(subtractRanges([0, 10], [[2, 3], [-5, 1], [9, 20]])).toEqual([[1, 2], [3, 9]])
  })
})

describe("fillSeries", () => {
  const starts = [0, 1, 2, 3, 4]
  const values = new Map<number, number | null>([[1, 10], [4, 40]])

  it("interpolates linearly between known buckets", () => {
    expect(fillSeries(starts, values, "linear")).toEqual([[0, null], [1, 10], [2, 20], [3, 30], [4, 40]])
  })

  it("carries the previous value forward", () => {
    expect(fillSeries(starts, values, "previous")).toEqual([[0, null], [1, 10], [2, 10], [3, 10], [4, 40]])
  })

  it("uses the empty value for counts", () => {
    expect(fillSeries(starts, values, "null", 0)).toEqual([[0, 0], [1, 10], [2, 0], [3, 0], [4, 40]])
  })
})

describe("calendar buckets", () => {
  it("start at local midnight across daylight-saving changes", () => {
    const from = Date.parse("2024-03-30T00:00:00+01:00") * 1000
    const to = Date.parse("2024-04-01T00:00:00+02:00") * 1000
    expect(bucketStarts("day", "Europe/Berlin", from, to, 10).map(iso)).toEqual(["2024-03-29T23:00:00.000Z", "2024-03-30T23:00:00.000Z"])
    expect(countBuckets("day", "Europe/Berlin", from, to)).toBe(2)
  })

  it("start where a skipped midnight begins the day", () => {
    // Sao Paulo moved its clocks from 00:00 to 01:00 on 2018-11-04, so that day began at 01:00 local.
    expect(new Date(startOfLocalDay("America/Sao_Paulo", { year: 2018, month: 11, day: 4 })).toISOString()).toBe("2018-11-04T03:00:00.000Z")
  })

  it("count months and weeks without building them", () => {
    const from = Date.parse("2020-01-15T00:00:00Z") * 1000
    const to = Date.parse("2021-01-15T00:00:00Z") * 1000
    expect(countBuckets("month", "UTC", from, to)).toBe(13)
    expect(countBuckets("month", "UTC", from, to)).toBe(bucketStarts("month", "UTC", from, to, 100).length)
    expect(countBuckets("week", "Europe/Berlin", from, to)).toBe(bucketStarts("week", "Europe/Berlin", from, to, 100).length)
  })

  it("suggests the next unit that fits", () => {
    const from = 0
    const to = Date.parse("2000-01-01T00:00:00Z") * 1000
    expect(suggestBucket("day", "UTC", from, to, 10_000)).toBe("week")
    expect(suggestBucket(1, "UTC", from, to, 10_000)).toBe(172_800)
  })
})

describe("startOfLastBuckets", () => {
  const to = Date.parse("2024-04-02T10:30:00Z") * 1000

  it("counts fixed widths back from the last bucket", () => {
    expect(iso(startOfLastBuckets(3600, "UTC", to, 1))).toBe("2024-04-02T10:00:00.000Z")
    expect(iso(startOfLastBuckets(3600, "UTC", to, 3))).toBe("2024-04-02T08:00:00.000Z")
    // A range that ends on a boundary does not overlap the bucket that starts there.
    expect(iso(startOfLastBuckets(3600, "UTC", Date.parse("2024-04-02T10:00:00Z") * 1000, 1))).toBe("2024-04-02T09:00:00.000Z")
  })

  it.each(["day", "week", "month"] as const)("matches bucketStarts for %s in Berlin", (unit) => {
    const from = Date.parse("2023-01-01T00:00:00Z") * 1000
    const all = bucketStarts(unit, "Europe/Berlin", from, to, 1000)
    for (const count of [1, 2, 5, 14]) {
      expect(iso(startOfLastBuckets(unit, "Europe/Berlin", to, count))).toBe(iso(all[all.length - count]!))
    }
  })

  it("crosses a year going back by months", () => {
    expect(iso(startOfLastBuckets("month", "UTC", to, 5))).toBe("2023-12-01T00:00:00.000Z")
  })
})
