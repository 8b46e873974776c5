import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { writeIsolatingRejections } from "../../src/ingest/Bisect.ts"

/** A write that fails when any item is negative and otherwise stores every item, in call order. */
const makeStore = () => {
  const stored: Array<number> = []
  const calls: Array<ReadonlyArray<number>> = []
  const write = (items: ReadonlyArray<number>) =>
    Effect.suspend(() => {
      calls.push(items)
      const bad = items.find((item) => item < 0)
      if (bad !== undefined) return Effect.fail(`negative: ${bad}`)
      stored.push(...items)
      return Effect.succeed(items.length)
    })
  return { stored, calls, write }
}

describe("writeIsolatingRejections", () => {
  it("writes valid items in one attempt", () => {
    const store = makeStore()
    const result = Effect.runSync(writeIsolatingRejections([1, 2, 3], store.write))
    expect(result).toEqual({ written: 3, rejected: [], attempts: 1 })
    expect(store.stored).toEqual([1, 2, 3])
  })

  it("isolates one bad item and keeps the order of the others", () => {
    const store = makeStore()
    const items = Array.from({ length: 16 }, (_, index) => (index === 11 ? -11 : index))
    const result = Effect.runSync(writeIsolatingRejections(items, store.write))
    expect(result.rejected).toEqual([{ item: -11, error: "negative: -11" }])
    expect(result.written).toBe(15)
    expect(store.stored).toEqual(items.filter((item) => item >= 0))
    // One failed write per level of halving, one successful write for each sibling half.
    expect(result.attempts).toBe(1 + 2 * Math.log2(16))
  })

  it("rejects every item when all are bad", () => {
    const store = makeStore()
    const result = Effect.runSync(writeIsolatingRejections([-1, -2, -3], store.write))
    expect(result.rejected.map(({ item }) => item)).toEqual([-1, -2, -3])
    expect(result.written).toBe(0)
    expect(store.stored).toEqual([])
  })

  it("rejects bad items at both ends", () => {
    const store = makeStore()
    const result = Effect.runSync(writeIsolatingRejections([-1, 2, 3, 4, -5], store.write))
    expect(result.rejected.map(({ item }) => item)).toEqual([-1, -5])
    expect(store.stored).toEqual([2, 3, 4])
  })

  it("does not call the write for no items", () => {
    const store = makeStore()
    const result = Effect.runSync(writeIsolatingRejections([], store.write))
    expect(result).toEqual({ written: 0, rejected: [], attempts: 0 })
    expect(store.calls).toEqual([])
  })
})
