import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, inject, it } from "vitest"
import { runCli } from "../support/Cli.ts"

const scratch = mkdtempSync(join(tmpdir(), "sensor-logger-user-errors-"))

/** Runs the CLI without colours. */
const runPlainCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => runCli(args, { NO_COLOR: "1", ...env })

const errorLines = (output: string) => output.split("\n").filter((line) => line.includes("level=ERROR"))

/** Checks that the output has exactly one error line, that it contains `message`, and that no stack trace follows. */
const expectOneErrorLine = (output: string, message: string) => {
  const lines = errorLines(output)
  expect(lines).toHaveLength(1)
  expect(lines[0]).toContain(message)
  expect(output).not.toContain("cause=")
  expect(output).not.toMatch(/\bat .*\.ts:\d+:\d+/)
}

describe("user-facing errors of the CLI", () => {
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  const simulatorCases = [
    { args: ["--rate", "0"], message: "invalid simulator option --rate 0: expected readings per second above 0" },
    { args: ["--sensors", "0"], message: "invalid simulator option --sensors 0: expected an integer of at least 1" },
    { args: ["--count", "-5"], message: "invalid simulator option --count -5: expected an integer of at least 0" },
    { args: ["--per-message", "0"], message: "invalid simulator option --per-message 0: expected an integer of at least 1" }
  ]

  for (const testCase of simulatorCases) {
    it(`simulate rejects ${testCase.args.join(" ")}`, async () => {
      const { code, output } = await runPlainCli(["simulate", ...testCase.args], { KAFKA_BROKERS: "127.0.0.1:9" })
      expect(code).toBe(1)
      expectOneErrorLine(output, testCase.message)
    }, 120_000)
  }

  it("start rejects --rate 0 before starting", async () => {
    const { code, output } = await runPlainCli(["start", "--rate", "0"], { DATA_DIR: join(scratch, "start") })
    expect(code).toBe(1)
    expectOneErrorLine(output, "invalid simulator option --rate 0: expected readings per second above 0")
    expect(output).not.toContain("Opening the embedded database")
  }, 120_000)

  it("query reports a locked data directory", async () => {
    const dataDir = join(scratch, "locked")
    mkdirSync(join(dataDir, "timescaledb"), { recursive: true })
    // The test process is alive on this host, so its pid holds the lock.
    const owner = { pid: process.pid, hostname: hostname(), createdAt: "2024-01-01T00:00:00.000Z" }
    writeFileSync(join(dataDir, "timescaledb.lock"), JSON.stringify(owner))
    const { code, output } = await runPlainCli(["query"], { DATA_DIR: dataDir, HTTP_PORT: "0" })
    expect(code).toBe(1)
    expectOneErrorLine(output, `is in use by another process (pid ${process.pid} on host ${hostname()}`)
  }, 120_000)

  it("all-in-one reports a broker data directory in use", async () => {
    const dataDir = join(scratch, "broker-locked")
    mkdirSync(join(dataDir, "kafka"), { recursive: true })
    // A lock whose owner, the test process, is alive and whose broker has not started yet.
    writeFileSync(join(dataDir, "kafka", "broker.lock"), JSON.stringify({ ownerPid: process.pid, startedAt: "2024-01-01T00:00:00.000Z" }))
    const { code, output } = await runPlainCli(["all-in-one"], { DATA_DIR: dataDir, HTTP_PORT: "0" })
    expect(code).toBe(1)
    expectOneErrorLine(output, `data directory ${join(dataDir, "kafka")} is in use by a broker (broker pid not yet started, started by pid ${process.pid})`)
  }, 120_000)

  it("query reports a port in use", async () => {
    const server: Server = createServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    try {
      const { code, output } = await runPlainCli(["query"], { DATA_DIR: join(scratch, "port"), HTTP_PORT: String(port) })
      expect(code).toBe(1)
      expectOneErrorLine(output, `cannot listen on 127.0.0.1:${port}: the port is in use; set HTTP_PORT to a free port`)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  }, 180_000)

  it("replay reports an invalid row in one line", async () => {
    const file = join(scratch, "mini.csv")
    writeFileSync(
      file,
      ["date,Temperature", "2022-01-01 00:00:00,1", "2022-01-01 00:00:01,2", "2022-01-01 00:00:02,3", "2022-13-01 00:00:03,4", ""].join("\n")
    )
    const topic = `test.cli.replay.${process.pid}.${Date.now().toString(36)}`
    const { code, output } = await runPlainCli(
      ["replay", file, "--sensor-id", "801", "--per-message", "1", "--time-format", "%Y-%m-%d %H:%M:%S", "--column", "Temperature=temperature", "--topic", topic],
      { KAFKA_BROKERS: inject("kafkaBrokers") }
    )
    expect(code).toBe(1)
    expectOneErrorLine(output, `${file}, line 5: invalid timestamp \\"2022-13-01 00:00:03\\"`)
    expect(errorLines(output)[0]).toContain("month 13 is out of range 1 to 12. 3 rows before it were sent as 3 readings in 3 messages.")
  }, 120_000)
})
