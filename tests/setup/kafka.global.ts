/**
 * Vitest global setup: provides the Kafka bootstrap servers to the tests as `inject("kafkaBrokers")`,
 * a comma-separated `host:port` list. `KAFKA_BROKERS`, when set, is used as is. Otherwise one local
 * broker is started on a free port with a fresh temporary data directory and stopped after the run.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import type { TestProject } from "vitest/node"
import { startLocalKafka } from "../../infra/kafka/LocalKafka.ts"

declare module "vitest" {
  export interface ProvidedContext {
    /** Comma-separated Kafka bootstrap servers, `host:port`. */
    kafkaBrokers: string
  }
}

/** Starts the shared broker unless `KAFKA_BROKERS` is set, and returns the teardown that stops it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env["KAFKA_BROKERS"]?.trim()
  if (configured !== undefined && configured !== "") {
    project.provide("kafkaBrokers", configured)
    return async () => {}
  }

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sensor-logger-kafka-"))
  const started = Date.now()
  // On failure the error contains the tail of the broker output, and the data directory is kept for inspection.
  const broker = await startLocalKafka({ dataDir })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  console.info(`Kafka for tests: local broker ${broker.brokers.join(",")} (pid ${broker.pid}) ready in ${seconds} s, data in ${dataDir}`)
  project.provide("kafkaBrokers", broker.brokers.join(","))

  return async () => {
    await broker.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}
