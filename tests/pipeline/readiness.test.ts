import { it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { describe, expect } from "vitest"
import { QueryLive } from "../../src/cli/Layers.ts"
import { Database } from "../../src/runtime/database/Database.ts"
import { EmbeddedDatabase } from "../../src/runtime/database/EmbeddedDatabase.ts"
import { makeDatabaseBridge } from "../support/DatabaseBridge.ts"
import { fetchMetrics, sampleValue } from "../support/Prometheus.ts"
import { pollUntil, serverUrl } from "../support/TestPipeline.ts"

interface Readiness {
  readonly status: string
  readonly checks: Record<string, { readonly status: string; readonly error?: string }>
}

const readiness = Effect.flatMap(serverUrl, (url) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/health/ready`)
    return { status: response.status, body: (await response.json()) as Readiness }
  }))

const awaitStatus = (status: number) =>
  pollUntil(readiness, (result) => result.status === status).pipe(Effect.timeout("30 seconds"))

const settings = ConfigProvider.fromMap(
  new Map([["HTTP_HOST", "127.0.0.1"], ["HTTP_PORT", "0"], ["HEALTH_CHECK_TIMEOUT_MS", "1000"]])
)

describe("readiness of the query service over TCP", () => {
  it.scopedLive("turns not ready while the database is down and ready when it returns", () =>
    Effect.gen(function*() {
      const bridge = yield* makeDatabaseBridge
      const url = `postgres://postgres:bridge-password@127.0.0.1:${bridge.port}/postgres`
      const service = QueryLive.pipe(
        Layer.provideMerge(Database.layerServer(url, { maxConnections: 1 })),
        Layer.provide(Layer.setConfigProvider(settings))
      )
      yield* Effect.gen(function*() {
        const up = yield* awaitStatus(200)
        expect(up.body.status).toBe("ready")
        expect(up.body.checks["query.database"]?.status).toBe("up")
        const metrics = yield* Effect.flatMap(serverUrl, (base) => Effect.promise(() => fetchMetrics(base)))
        expect(sampleValue(metrics, "sensor_logger_database_connections_max")).toBe(1)

        yield* bridge.stop
        const downResult = yield* awaitStatus(503)
        expect(downResult.body.status).toBe("not ready")
        expect(downResult.body.checks["query.database"]?.status).toBe("down")
        expect(downResult.body.checks["query.database"]?.error).toBeDefined()
        expect(JSON.stringify(downResult.body)).not.toContain("bridge-password")

        yield* bridge.start
        const back = yield* awaitStatus(200)
        expect(back.body.checks["query.database"]?.status).toBe("up")
      }).pipe(Effect.provide(service))
    }).pipe(Effect.provide(EmbeddedDatabase.layer("memory://"))))
})
