import { describe, expect, it } from "vitest"
import { deadLetterHeaders, maxReasonLength, toDeadLetterRecord, truncateReason } from "../../src/ingest/DeadLetter.ts"

const message = {
  key: Buffer.from("7"),
  value: Buffer.from("nan"),
  timestamp: "1646409307000",
  attributes: 0,
  offset: "42",
  headers: { traceparent: Buffer.from("00-abc-def-01") }
}

describe("toDeadLetterRecord", () => {
  it("keeps the original record and adds the source and the error", () => {
    const record = toDeadLetterRecord({ topic: "t", partition: 1, message, errorTag: "InvalidMessage", reason: "not JSON" })
    expect(record.key).toBe(message.key)
    expect(record.value).toBe(message.value)
    expect(record.timestamp).toBe("1646409307000")
    expect(record.headers).toEqual({
      traceparent: message.headers.traceparent,
      [deadLetterHeaders.topic]: "t",
      [deadLetterHeaders.partition]: "1",
      [deadLetterHeaders.offset]: "42",
      [deadLetterHeaders.errorTag]: "InvalidMessage",
      [deadLetterHeaders.reason]: "not JSON"
    })
  })

  it("shortens a long reason and says by how much", () => {
    const reason = "x".repeat(maxReasonLength + 500)
    expect(truncateReason(reason)).toBe(`${"x".repeat(maxReasonLength)}… (500 more characters)`)
    const record = toDeadLetterRecord({ topic: "t", partition: 0, message, errorTag: "InvalidReading", reason })
    expect(String(record.headers?.[deadLetterHeaders.reason]).length).toBeLessThan(maxReasonLength + 30)
  })
})
