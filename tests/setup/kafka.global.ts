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

/** The broker of this vitest process, shared by the projects of vitest.config.ts. */
interface SharedBroker {
  readonly brokers: string
  users: number
  readonly stop: () => Promise<void>
}

const sharedKey = Symbol.for("sensor-logger.test.kafka")
const processGlobals = globalThis as { [sharedKey]?: Promise<SharedBroker> }

const startShared = async (): Promise<SharedBroker> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sensor-logger-kafka-"))
  const started = Date.now()
  // On failure the error contains the tail of the broker output, and the data directory is kept for inspection.
  const broker = await startLocalKafka({ dataDir })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  console.info(`Kafka for tests: local broker ${broker.brokers.join(",")} (pid ${broker.pid}) ready in ${seconds} s, data in ${dataDir}`)
  return {
    brokers: broker.brokers.join(","),
    users: 0,
    stop: async () => {
      await broker.stop()
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

/**
 * Starts the shared broker unless `KAFKA_BROKERS` is set, and returns the teardown that stops it.
 * Vitest runs the global setup once per project, in one process, so the first project starts the
 * broker and the last teardown stops it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env["KAFKA_BROKERS"]?.trim()
  if (configured !== undefined && configured !== "") {
    project.provide("kafkaBrokers", configured)
    return async () => {}
  }

  processGlobals[sharedKey] ??= startShared()
  const shared = await processGlobals[sharedKey]
  shared.users++
  project.provide("kafkaBrokers", shared.brokers)

  return async () => {
    shared.users--
    if (shared.users > 0) return
    delete processGlobals[sharedKey]
    await shared.stop()
  }
}
