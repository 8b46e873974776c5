import { describe, expect, it } from "vitest"
import { formatSummary } from "../../src/cli/commands/replayDlq.ts"
import { runCli } from "../support/Cli.ts"

/** Runs the CLI without colours. */
const runPlainCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => runCli(args, { NO_COLOR: "1", ...env })

describe("replay-dlq summary", () => {
  it("separates long topic names from counts", () => {
    const longTopic = "logger.sensor.ts.with.a.much.longer.name"
    const text = formatSummary(
      { scanned: 30, replayed: 24, skipped: 5, invalid: 1, byTopic: { "logger.sensor.ts": 24, [longTopic]: 0 }, dryRun: true },
      "logger.sensor.ts.dlq"
    )
    const lines = text.split("\n")
    expect(lines).toContain("deadLetterTopic  logger.sensor.ts.dlq")
    expect(lines).toContain("scanned          30")
    expect(lines).toContain("wouldReplay      24")
    expect(lines).toContain("  to logger.sensor.ts  24")
    expect(lines).toContain(`  to ${longTopic}  0`)
    expect(lines).toContain("skipped          5")
  })
})

describe("replay-dlq options", () => {
  it("rejects an unknown --error-tag", async () => {
    const { code, output } = await runPlainCli(["replay-dlq", "--error-tag", "Bogus", "--dry-run"], { KAFKA_BROKERS: "127.0.0.1:9" })
    expect(code).toBe(2)
    expect(output).toContain(`Invalid --error-tag "Bogus": expected one of InvalidMessage, InvalidReading, WriteRejected`)
  }, 120_000)

  for (const args of [["--error-tag", ""], ["--error-tag"]]) {
    it(`rejects ${args.length === 1 ? "a missing" : "an empty"} --error-tag`, async () => {
      const { code, output } = await runPlainCli(["replay-dlq", "--dry-run", ...args], { KAFKA_BROKERS: "127.0.0.1:9" })
      expect(code).toBe(1)
      expect(output).toContain(`Invalid --error-tag \\"\\": expected one of InvalidMessage, InvalidReading, WriteRejected`)
      expect(output).not.toContain("Failed to connect")
    }, 120_000)
  }

  it("shows --error-tag as optional", async () => {
    const { code, output } = await runPlainCli(["replay-dlq", "--help"])
    expect(code).toBe(0)
    expect(output).toContain("[--error-tag tag...]")
  }, 120_000)

  it("checks the settings before connecting", async () => {
    const { code, output } = await runPlainCli(["replay-dlq", "--error-tag", "WriteRejected", "--dry-run"], {
      KAFKA_BROKERS: "127.0.0.1:9",
      OTEL_TRACES_SAMPLER: "sometimes"
    })
    expect(code).toBe(78)
    expect(output).toContain(`OTEL_TRACES_SAMPLER=\\"sometimes\\" is invalid`)
    expect(output).not.toContain("Failed to connect")
  }, 120_000)
})
