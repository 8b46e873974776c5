import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { formatSummary } from "../../src/cli/commands/replayDlq.ts"

const root = join(import.meta.dirname, "../..")

/** Runs the CLI with `env` added to a minimal environment and returns its exit code and output. */
const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/sensor-logger.js", ...args], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const chunks: Array<string> = []
    child.stdout.on("data", (chunk) => chunks.push(String(chunk)))
    child.stderr.on("data", (chunk) => chunks.push(String(chunk)))
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000)
    child.once("error", reject)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output: chunks.join("") })
    })
  })

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
    const { code, output } = await runCli(["replay-dlq", "--error-tag", "Bogus", "--dry-run"], { KAFKA_BROKERS: "127.0.0.1:9" })
    expect(code).toBe(2)
    expect(output).toContain(`Invalid --error-tag "Bogus": expected one of InvalidMessage, InvalidReading, WriteRejected`)
  }, 120_000)

  it("shows --error-tag as optional", async () => {
    const { code, output } = await runCli(["replay-dlq", "--help"])
    expect(code).toBe(0)
    expect(output).toContain("[--error-tag tag...]")
  }, 120_000)

  it("checks the settings before connecting", async () => {
    const { code, output } = await runCli(["replay-dlq", "--error-tag", "WriteRejected", "--dry-run"], {
      KAFKA_BROKERS: "127.0.0.1:9",
      OTEL_TRACES_SAMPLER: "sometimes"
    })
    expect(code).toBe(78)
    expect(output).toContain(`OTEL_TRACES_SAMPLER=\\"sometimes\\" is invalid`)
    expect(output).not.toContain("Failed to connect")
  }, 120_000)
})
