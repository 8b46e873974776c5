import { Effect } from "effect"
import type { KafkaMessage } from "kafkajs"
import { describe, expect, it } from "vitest"
import { PartitionMailbox } from "../../../src/runtime/kafka/PartitionMailbox.ts"

const record = (offset: number, bytes = 10): KafkaMessage => ({
  key: null,
  value: Buffer.alloc(bytes),
  timestamp: "0",
  attributes: 0,
  offset: String(offset),
  headers: {}
})

const records = (from: number, count: number, bytes = 10) => Array.from({ length: count }, (_, index) => record(from + index, bytes))

/** A mailbox with a fetch control that records every pause and resume. */
const makeMailbox = (maxRecords: number, maxBytes: number) => {
  const calls: Array<"pause" | "resume"> = []
  const mailbox = Effect.runSync(
    PartitionMailbox.make("t", 0, { maxRecords, maxBytes }, { pause: () => calls.push("pause"), resume: () => calls.push("resume") })
  )
  return { mailbox, calls }
}

describe("PartitionMailbox", () => {
  it("pauses at the record limit and resumes below half of it", () => {
    const { calls, mailbox } = makeMailbox(10, 1_000_000)
    Effect.runSync(mailbox.accept(records(0, 6)))
    expect(calls).toEqual([])
    Effect.runSync(mailbox.accept(records(6, 6)))
    expect(calls).toEqual(["pause"])
    expect(mailbox.status()).toMatchObject({ records: 12, peakRecords: 12, fetches: 2, paused: true, pauses: 1 })
    Effect.runSync(mailbox.release(6, 60))
    expect(calls).toEqual(["pause"])
    Effect.runSync(mailbox.release(1, 10))
    expect(calls).toEqual(["pause", "resume"])
    expect(mailbox.status().paused).toBe(false)
  })

  it("pauses at the byte limit", () => {
    const { calls, mailbox } = makeMailbox(1000, 100)
    Effect.runSync(mailbox.accept(records(0, 2, 60)))
    expect(calls).toEqual(["pause"])
    expect(mailbox.status().bytes).toBe(120)
  })

  it("stays paused while held, whatever was released", () => {
    const { calls, mailbox } = makeMailbox(10, 1_000_000)
    Effect.runSync(mailbox.hold)
    expect(calls).toEqual(["pause"])
    Effect.runSync(mailbox.accept(records(0, 2)))
    Effect.runSync(mailbox.release(2, 20))
    expect(calls).toEqual(["pause"])
    Effect.runSync(mailbox.unhold)
    expect(calls).toEqual(["pause", "resume"])
  })

  it("drops records it has accepted before", () => {
    const { mailbox } = makeMailbox(100, 1_000_000)
    expect(Effect.runSync(mailbox.accept(records(0, 5)))).toBe(5)
    expect(Effect.runSync(mailbox.accept(records(3, 4)))).toBe(2)
    expect(mailbox.status()).toMatchObject({ records: 7, nextOffset: "7" })
    const first = Effect.runSync(mailbox.take)
    const second = Effect.runSync(mailbox.take)
    expect(first._tag === "Records" && first.messages.map((message) => message.offset)).toEqual(["0", "1", "2", "3", "4"])
    expect(second._tag === "Records" && second.messages.map((message) => message.offset)).toEqual(["5", "6"])
  })

  it("queues a wake-up behind the records", () => {
    const { mailbox } = makeMailbox(100, 1_000_000)
    Effect.runSync(mailbox.accept(records(0, 1)))
    Effect.runSync(mailbox.wake(3))
    expect(Effect.runSync(mailbox.take)._tag).toBe("Records")
    expect(Effect.runSync(mailbox.take)).toEqual({ _tag: "WakeUp", token: 3 })
  })
})
