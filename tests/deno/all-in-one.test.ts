import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Kafka, logLevel } from "kafkajs"
import { afterAll, describe, expect, inject, it } from "vitest"
import { type OtlpReceiver, startOtlpReceiver } from "../support/OtlpReceiver.ts"
import { sampleValue } from "../support/Prometheus.ts"

const root = join(import.meta.dirname, "../..")
const denoBinary = join(root, "node_modules/deno/deno")

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const waitFor = async <A>(probe: () => Promise<A | undefined>, timeoutMillis: number, what: string): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`timed out after ${timeoutMillis} ms waiting for ${what}`)
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode)
    else child.once("exit", (code) => resolve(code))
  })

describe("all-in-one on Deno", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "sensor-logger-deno-"))
  let child: ChildProcess | undefined
  let otlp: OtlpReceiver | undefined
  afterAll(async () => {
    child?.kill("SIGKILL")
    await otlp?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it("ingests the original example message and serves it", async () => {
    const brokers = inject("kafkaBrokers")
    const port = await freePort()
    const topic = `test.deno.${process.pid}.${Date.now().toString(36)}`
    otlp = await startOtlpReceiver()
    const output: Array<string> = []
    child = spawn(denoBinary, ["run", "--allow-all", "src/bin.ts", "all-in-one"], {
      cwd: root,
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers,
        KAFKA_READINGS_TOPIC: `${topic}.ts`,
        KAFKA_SENSORS_TOPIC: `${topic}.instance`,
        KAFKA_GROUP_ID: `${topic}.group`,
        DATA_DIR: dataDir,
        HTTP_PORT: String(port),
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
        NO_COLOR: "1"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    child.stdout?.on("data", (chunk) => output.push(String(chunk)))
    child.stderr?.on("data", (chunk) => output.push(String(chunk)))
    const url = `http://127.0.0.1:${port}`

    await waitFor(async () => ((await fetch(`${url}/v1/sensors`)).ok ? true : undefined), 120_000, "the query API").catch(
      (error) => {
        throw new Error(`${(error as Error).message}; output:\n${output.join("").slice(-3000)}`)
      }
    )

    const kafka = new Kafka({ brokers: brokers.split(","), clientId: "test-device", logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic: `${topic}.ts`,
      messages: [{ key: "1", value: `[{"ts": 1646409307, "sensor_id": 1, "temperature":30, "cpu":20}]` }]
    })
    await producer.disconnect()

    const body = await waitFor(async () => {
      const response = (await (await fetch(`${url}/v1/sensor-data`)).json()) as { data: Array<unknown> }
      return response.data.length > 0 ? response : undefined
    }, 60_000, "the reading to be served")
    expect(body.data).toEqual([{ ts: "2022-03-04T15:55:07.000Z", sensor_id: 1, temperature: 30, cpu: 20 }])

    // The counter moves after the commit, which follows the write that made the reading visible.
    const written = await waitFor(async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text()
      const value = sampleValue(metrics, "sensor_logger_ingest_readings_written_total", { topic: `${topic}.ts` })
      return value > 0 ? value : undefined
    }, 30_000, "the readings counter")
    expect(written).toBe(1)
    const ready = await waitFor(async () => {
      const response = await fetch(`${url}/health/ready`)
      return response.status === 200 ? ((await response.json()) as { checks: Record<string, unknown> }) : undefined
    }, 30_000, "readiness")
    expect(Object.keys(ready.checks)).toContain("ingest.progress")

    child.kill("SIGINT")
    const code = await exited(child)
    const log = output.join("")
    expect(log).toContain("Kafka consumer left the group")
    expect(log).toContain("Embedded database closed")
    expect(code).toBe(0)

    // The tracer flushed its spans on the way out, from Deno's node:http as well.
    const spans = otlp.spans()
    const batch = spans.find((span) => span.name === "IngestJob.batch" && span.attributes["messaging.destination.name"] === `${topic}.ts`)
    expect(batch?.serviceName).toBe("sensor-logger")
    expect(spans.some((span) => span.attributes["http.route"] === "/v1/sensor-data")).toBe(true)
  }, 240_000)
})
