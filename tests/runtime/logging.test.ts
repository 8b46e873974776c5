import { ConfigProvider, Effect, Layer } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import { LoggingLive } from "../../src/runtime/Logging.ts"
import { makeRedactor, redactCredentialPatterns } from "../../src/runtime/Redaction.ts"

const databasePassword = "hunter2-database"
const saslPassword = "kafka-sasl-secret"
const headerSecret = "otlp-api-key-42"

const environment = (format: string) =>
  ConfigProvider.fromMap(
    new Map([
      ["LOG_FORMAT", format],
      ["DATABASE_URL", `postgres://ingest:${encodeURIComponent(databasePassword)}@db.internal:5432/sensors`],
      ["KAFKA_SASL_PASSWORD", saslPassword],
      ["OTEL_EXPORTER_OTLP_HEADERS", `api-key=${headerSecret}`]
    ])
  )

/** Runs `program` under the process logger in `format` and returns every line it printed. */
const captureLogs = async (format: string, program: Effect.Effect<void>) => {
  const lines: Array<string> = []
  const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => void lines.push(args.map(String).join(" ")))
  try {
    await Effect.runPromise(
      program.pipe(Effect.provide(LoggingLive), Effect.provide(Layer.setConfigProvider(environment(format))))
    )
  } finally {
    spy.mockRestore()
  }
  return lines
}

const leakyProgram = Effect.gen(function*() {
  yield* Effect.logInfo(`connecting with ${databasePassword} to postgres://other:plain-pass@host/db`)
  yield* Effect.logWarning("SASL settings").pipe(
    Effect.annotateLogs({ sasl: { mechanism: "plain", username: "svc", password: saslPassword }, header: headerSecret })
  )
  yield* Effect.logError("Connect failed", new Error(`password authentication failed: ${databasePassword}`))
  yield* Effect.logError("Failed with a defect").pipe(
    Effect.zipRight(Effect.die(new Error(`sasl ${saslPassword}`))),
    Effect.catchAllCause((cause) => Effect.logError("Caught", cause))
  )
})

describe("log redaction", () => {
  afterEach(() => vi.restoreAllMocks())

  for (const format of ["logfmt", "json", "pretty"]) {
    it(`hides secrets in ${format} output`, async () => {
      const output = (await captureLogs(format, leakyProgram)).join("\n")
      expect(output).toContain("connecting with")
      expect(output).toContain("***")
      expect(output).not.toContain(databasePassword)
      expect(output).not.toContain(saslPassword)
      expect(output).not.toContain(headerSecret)
      expect(output).not.toContain("plain-pass")
    })
  }

  it("keeps entries without secrets unchanged", async () => {
    const lines = await captureLogs("json", Effect.logInfo("Batch written").pipe(Effect.annotateLogs({ rows: 12, topic: "t" })))
    expect(lines).toHaveLength(1)
    const entry = JSON.parse(lines[0]!) as { message: string; annotations: Record<string, unknown> }
    expect(entry.message).toBe("Batch written")
    expect(entry.annotations).toEqual({ rows: 12, topic: "t" })
  })
})

describe("credential patterns", () => {
  it("masks URL passwords and password pairs", () => {
    expect(redactCredentialPatterns("postgres://u:p%40ss@h:5432/d")).toBe("postgres://u:***@h:5432/d")
    expect(redactCredentialPatterns("postgresql://u:p@ss@h/d")).toBe("postgresql://u:***@h/d")
    expect(redactCredentialPatterns("host=h password=abc user=u")).toBe("host=h password=*** user=u")
    expect(redactCredentialPatterns(`{"password":"a\\"b","user":"u"}`)).toBe(`{"password":"***","user":"u"}`)
    expect(redactCredentialPatterns("https://example.org/path?q=1")).toBe("https://example.org/path?q=1")
  })

  it("masks configured secrets but not short ones", () => {
    const redact = makeRedactor(["longsecret", "ab"])
    expect(redact("value longsecret and ab")).toBe("value *** and ab")
  })
})
