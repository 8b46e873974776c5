import { expect, it } from "vitest"

// The query-tz-berlin project of vitest.config.ts sets TZ; this checks that the setting reached
// the process, so the query tests of that project really run in a zone with daylight saving time.
it.runIf(process.env.TZ === "Europe/Berlin")("process time zone is Berlin", () => {
  expect(new Date(Date.UTC(2024, 0, 15)).getTimezoneOffset()).toBe(-60)
  expect(new Date(Date.UTC(2024, 6, 15)).getTimezoneOffset()).toBe(-120)
})
