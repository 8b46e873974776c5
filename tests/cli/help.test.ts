import { describe, expect, it } from "vitest"
import { runCli } from "../support/Cli.ts"

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
