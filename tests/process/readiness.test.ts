import * as Fs from "node:fs/promises"
import { afterEach, describe, expect, it } from "vitest"
import { ProcessGroup } from "../support/ChildProcesses.ts"
import {
  freshDataDir,
  freshNames,
  ingestEnvironment,
  ingestOperationsUrl,
  STARTUP_TIMEOUT_MS,
  startDatabaseServer,
  startQuery,
  waitUntil
} from "../support/ProcessPipeline.ts"

const group = new ProcessGroup()
const cleanups: Array<() => Promise<unknown>> = []

afterEach(async () => {
  await group.killAll()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

/** Body of `/health/ready`. */
interface ReadinessBody {
  readonly status: string
  readonly checks: Readonly<Record<string, { readonly status: string; readonly error?: string }>>
}

interface Probe<A> {
  readonly status: number
  readonly body: A
}

/** Requests `path` of `baseUrl` and returns the status and the JSON body, or status 0 when the request fails. */
const probe = async <A>(baseUrl: string, path: string): Promise<Probe<A | undefined>> => {
  try {
    const response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(10_000) })
    return { status: response.status, body: (await response.json()) as A }
  } catch {
    return { status: 0, body: undefined }
  }
}

const readiness = (baseUrl: string) => probe<ReadinessBody>(baseUrl, "/health/ready")
const liveness = (baseUrl: string) => probe<{ status: string }>(baseUrl, "/health/live")

/** Names of the checks in a readiness body, and those of the failing ones, both sorted. */
const checkNames = (body: ReadinessBody | undefined) => {
  const entries = Object.entries(body?.checks ?? {}).sort(([a], [b]) => a.localeCompare(b))
  return {
    all: entries.map(([name]) => name),
    failing: entries.filter(([, check]) => check.status !== "up").map(([name]) => name)
  }
}

/** Time allowed for a readiness change: a failed connection, or a check timeout of 2 s, and the 1 s cache. */
const TRANSITION_TIMEOUT_MS = 30_000

const INGEST_CHECKS = ["ingest.consumer", "ingest.database", "ingest.kafka", "ingest.progress"]
const QUERY_CHECKS = ["query.database"]

describe("readiness of separate processes", () => {
  it("follows the database server down and up", async () => {
    const names = freshNames("readiness")
    const dataDir = await freshDataDir("readiness")
    cleanups.push(() => Fs.rm(dataDir, { recursive: true, force: true }))

    const database = await startDatabaseServer(group, "database", dataDir)
    const ingest = group.start("ingest", ["ingest"], ingestEnvironment(names, database.url))
    const [ingestUrl, query] = await Promise.all([ingestOperationsUrl(ingest), startQuery(group, "query", database.url)])
    const services = [
      { name: "ingest", baseUrl: ingestUrl, checks: INGEST_CHECKS },
      { name: "query", baseUrl: query.baseUrl, checks: QUERY_CHECKS }
    ]
    const awaitReadiness = (baseUrl: string, status: number, timeoutMs: number, description: string) =>
      waitUntil(description, () => readiness(baseUrl), (result) => result.status === status, timeoutMs, () => group.tails())

    // The ingest job is ready once it has joined its group, after the migrations.
    for (const service of services) {
      const ready = await awaitReadiness(service.baseUrl, 200, STARTUP_TIMEOUT_MS, `${service.name} to be ready`)
      expect(ready.body?.status).toBe("ready")
      expect(checkNames(ready.body).all).toEqual(service.checks)
      expect(checkNames(ready.body).failing).toEqual([])
    }

    const stopped = await database.process.stop()
    expect(stopped.code).toBe(0)
    for (const service of services) {
      const notReady = await awaitReadiness(service.baseUrl, 503, TRANSITION_TIMEOUT_MS, `${service.name} to turn not ready`)
      const databaseCheck = `${service.name}.database`
      expect(notReady.body?.status).toBe("not ready")
      expect(checkNames(notReady.body).all).toEqual(service.checks)
      expect(checkNames(notReady.body).failing).toEqual([databaseCheck])
      expect(notReady.body?.checks[databaseCheck]?.error ?? "").not.toBe("")
      const live = await liveness(service.baseUrl)
      expect(live.status).toBe(200)
      expect(live.body?.status).toBe("alive")
    }
    expect(ingest.running).toBe(true)
    expect(query.process.running).toBe(true)

    const restarted = await startDatabaseServer(group, "database-restarted", dataDir, database.port)
    expect(restarted.url).toBe(database.url)
    for (const service of services) {
      const back = await awaitReadiness(service.baseUrl, 200, TRANSITION_TIMEOUT_MS, `${service.name} to be ready again`)
      expect(back.body?.status).toBe("ready")
      expect(checkNames(back.body).failing).toEqual([])
    }
  }, 3 * STARTUP_TIMEOUT_MS)
})
