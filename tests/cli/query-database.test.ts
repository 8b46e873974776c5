import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { QueryDatabase } from "../../src/cli/Layers.ts"
import { DatabaseInfo } from "../../src/runtime/database/Database.ts"
import { EmbeddedDatabaseServer } from "../../src/runtime/database/EmbeddedDatabaseServer.ts"

/** Builds `QueryDatabase` from `env` alone and returns its database info. */
const queryDatabaseInfo = (env: Record<string, string>) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(QueryDatabase)
    return yield* Effect.provide(DatabaseInfo, context)
  })).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

const ServerLayer = EmbeddedDatabaseServer.layer({ dataDir: "memory://", host: "127.0.0.1", port: 0 })

layer(ServerLayer, { timeout: 120_000, excludeTestServices: true })("QueryDatabase with QUERY_DATABASE_URL", (it) => {
  it.effect("sizes the pool from DATABASE_MAX_CONNECTIONS", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedDatabaseServer
      const env = { QUERY_DATABASE_URL: server.url, DATABASE_MAX_CONNECTIONS: "3" }
      const opened = yield* Effect.scoped(Effect.gen(function*() {
        const before = yield* server.connectionCount
        const context = yield* Layer.build(QueryDatabase)
        const sql = yield* Effect.provide(SqlClient.SqlClient, context)
        // Six statements at once need six connections, so the pool opens its maximum.
        yield* Effect.all(Array.from({ length: 6 }, () => sql`select pg_sleep(0.05)`), { concurrency: "unbounded" })
        const info = yield* Effect.provide(DatabaseInfo, context)
        return { info, opened: (yield* server.connectionCount) - before }
      })).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))

      expect(opened.info).toEqual({ mode: "server", maxConnections: 3 })
      expect(opened.opened).toBe(3)
    }))

  it.effect("keeps the default pool size of 10", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedDatabaseServer

      const info = yield* queryDatabaseInfo({ QUERY_DATABASE_URL: server.url })

      expect(info).toEqual({ mode: "server", maxConnections: 10 })
    }))

  it.effect("rejects DATABASE_MAX_CONNECTIONS=0", () =>
    Effect.gen(function*() {
      const server = yield* EmbeddedDatabaseServer

      const error = yield* Effect.flip(queryDatabaseInfo({ QUERY_DATABASE_URL: server.url, DATABASE_MAX_CONNECTIONS: "0" }))

      expect(String(error)).toContain("DATABASE_MAX_CONNECTIONS must be an integer of at least 1")
    }))
})
