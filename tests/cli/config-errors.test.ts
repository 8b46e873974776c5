import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "../support/Cli.ts"

const dataDir = mkdtempSync(join(tmpdir(), "sensor-logger-config-"))

/** Runs the CLI without colours, on this file's data folder, with `env` added. */
const runPlainCli = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  runCli(args, { DATA_DIR: dataDir, NO_COLOR: "1", ...env }, 60_000)

const occurrences = (text: string, part: string) => text.split(part).length - 1

describe("configuration errors of the CLI", () => {
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  const cases = [
    {
      name: "HTTP_PORT",
      args: ["query"],
      env: { HTTP_PORT: "abc" },
      message: `HTTP_PORT=\\"abc\\" is invalid: expected an integer from 0 to 65535`
    },
    {
      name: "INGEST_LINGER_MS",
      args: ["ingest"],
      env: { KAFKA_BROKERS: "127.0.0.1:9", INGEST_LINGER_MS: "-1" },
      message: `INGEST_LINGER_MS=\\"-1\\" is invalid: expected a positive integer`
    },
    {
      name: "OTEL_TRACES_SAMPLER",
      args: ["all-in-one"],
      env: { KAFKA_BROKERS: "127.0.0.1:9", OTEL_TRACES_SAMPLER: "sometimes" },
      message: `OTEL_TRACES_SAMPLER=\\"sometimes\\" is invalid: expected one of always_on`
    },
    {
      name: "INGEST_HTTP_PORT",
      args: ["ingest"],
      env: { KAFKA_BROKERS: "127.0.0.1:9", INGEST_HTTP_PORT: "70000" },
      message: `INGEST_HTTP_PORT=\\"70000\\" is invalid: expected an integer from 0 to 65535`
    },
    {
      name: "STORAGE_COMPRESS_AFTER",
      args: ["all-in-one"],
      env: { KAFKA_BROKERS: "127.0.0.1:9", STORAGE_COMPRESS_AFTER: "bogus" },
      message: `STORAGE_COMPRESS_AFTER=\\"bogus\\" is invalid: \\"bogus\\" is not an age`
    },
    {
      name: "READ_MODEL_REFRESH_INTERVAL_MS",
      args: ["ingest"],
      env: { KAFKA_BROKERS: "127.0.0.1:9", READ_MODEL_REFRESH_INTERVAL_MS: "soon" },
      message: `READ_MODEL_REFRESH_INTERVAL_MS=\\"soon\\" is invalid: expected an integer of at least 0 (milliseconds)`
    },
    {
      name: "QUERY_STATEMENT_TIMEOUT_MS",
      args: ["query"],
      env: { QUERY_STATEMENT_TIMEOUT_MS: "abc" },
      message: `QUERY_STATEMENT_TIMEOUT_MS=\\"abc\\" is invalid: expected an integer from 1 to 2147483647 (milliseconds)`
    }
  ]

  for (const testCase of cases) {
    it(`stops on an invalid ${testCase.name}`, async () => {
      const { code, output } = await runPlainCli(testCase.args, testCase.env)
      expect(code).toBe(78)
      expect(occurrences(output, testCase.message)).toBe(1)
      // Settings are checked before anything is opened or connected.
      expect(output).not.toContain("Opening the embedded database")
      expect(output).not.toContain("Failed to connect")
    }, 90_000)
  }

  it("stops on an invalid LOG_LEVEL with the default logger", async () => {
    const { code, output } = await runPlainCli(["query"], { LOG_LEVEL: "loud" })
    expect(code).toBe(78)
    expect(occurrences(output, `LOG_LEVEL=\\"loud\\" is invalid: expected one of all, trace, debug`)).toBe(1)
  }, 90_000)

  it("names every invalid setting at once", async () => {
    const { code, output } = await runPlainCli(["query"], { LOG_LEVEL: "loud", HTTP_PORT: "abc", QUERY_STATEMENT_TIMEOUT_MS: "0" })
    expect(code).toBe(78)
    expect(occurrences(output, "Invalid configuration")).toBe(1)
    expect(output).toContain(`LOG_LEVEL=\\"loud\\" is invalid`)
    expect(output).toContain(`HTTP_PORT=\\"abc\\" is invalid`)
    expect(output).toContain(`QUERY_STATEMENT_TIMEOUT_MS=\\"0\\" is invalid`)
  }, 90_000)

  it("names the database URL without its password", async () => {
    const { code, output } = await runPlainCli(["query"], {
      LOG_FORMAT: "json",
      DATABASE_URL: "mysql://ingest:s3cret-Passw0rd@db.internal/sensors",
      KAFKA_SASL_PASSWORD: "kafka-Secret-99"
    })
    expect(code).toBe(78)
    const lines = output.trim().split("\n")
    expect(lines).toHaveLength(1)
    const entry = JSON.parse(lines[0]!) as { message: string; logLevel: string }
    expect(entry.logLevel).toBe("ERROR")
    expect(entry.message).toContain(`DATABASE_URL="mysql://ingest:***@db.internal/sensors" is invalid`)
    expect(output).not.toContain("s3cret-Passw0rd")
    expect(output).not.toContain("kafka-Secret-99")
  }, 90_000)

  it("requires a SASL password once a mechanism is set", async () => {
    const { code, output } = await runPlainCli(["simulate", "--count", "1"], {
      KAFKA_SASL_MECHANISM: "scram-sha-512",
      KAFKA_SASL_USERNAME: "device"
    })
    expect(code).toBe(78)
    expect(output).toContain("KAFKA_SASL_PASSWORD is not set: SASL scram-sha-512 needs a password")
  }, 90_000)
})
