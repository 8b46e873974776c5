import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"

const root = join(import.meta.dirname, "../..")

/** Runs the CLI with stdout and stderr piped (not a terminal) and `env` added to a minimal environment. */
const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/sensor-logger.js", ...args], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
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

/** Returns the help of `option`: from its heading to its "This setting is optional." line. */
const optionHelp = (output: string, option: string) => {
  const start = output.indexOf(`\n${option} `)
  return start === -1 ? "" : output.slice(start, output.indexOf("This setting is optional.", start))
}

describe("command help", () => {
  it("start shows its defaults", async () => {
    const { code, output } = await runCli(["start", "--help"])
    expect(code).toBe(0)
    expect(optionHelp(output, "--sensors")).toContain("Default: 10")
    expect(optionHelp(output, "--rate")).toContain("Default: 50")
    expect(optionHelp(output, "--rate")).toContain("temperature,cpu")
  }, 120_000)

  it("simulate shows its defaults", async () => {
    const { code, output } = await runCli(["simulate", "--help"])
    expect(code).toBe(0)
    expect(optionHelp(output, "--sensors")).toContain("Default: 10")
    expect(optionHelp(output, "--rate")).toContain("Default: 100")
    expect(optionHelp(output, "--per-message")).toContain("Default: 1")
    expect(optionHelp(output, "--metrics")).toContain("Default: temperature,cpu")
    expect(optionHelp(output, "--seed")).toContain("Default: 1")
    expect(optionHelp(output, "--first-sensor-id")).toContain("Default: 1")
  }, 120_000)

  it("has no colour codes with NO_COLOR", async () => {
    const { code, output } = await runCli(["simulate", "--help"], { NO_COLOR: "1" })
    expect(code).toBe(0)
    expect(output).toContain("USAGE")
    expect(output).not.toContain("\u001b[")
  }, 120_000)

  it("has no colour codes off a terminal", async () => {
    const { code, output } = await runCli(["replay-dlq", "--help"])
    expect(code).toBe(0)
    expect(output).toContain("USAGE")
    expect(output).not.toContain("\u001b[")
  }, 120_000)

  it("has no colour codes in usage errors", async () => {
    const { code, output } = await runCli(["simulate", "--rate", "fast"])
    expect(code).toBe(2)
    expect(output).toContain("fast")
    expect(output).not.toContain("\u001b[")
  }, 120_000)
})
