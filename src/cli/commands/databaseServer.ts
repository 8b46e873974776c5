import { Command } from "@effect/cli"
import { Effect } from "effect"
import { dataDirConfig, embeddedDataDir } from "../../runtime/database/Database.ts"
import { databaseServerConfig, makeEmbeddedDatabaseServer } from "../../runtime/database/EmbeddedDatabaseServer.ts"
import { commandSettings, validateSettings } from "../Settings.ts"

/**
 * `sensor-logger database-server`: the embedded TimescaleDB of `${DATA_DIR}/timescaledb` served
 * over TCP until SIGINT or SIGTERM, so that `ingest` and `query` processes can share it through
 * `DATABASE_URL`. It exits with an error when the PGlite instance fails.
 */
export const databaseServerCommand = Command.make("database-server", {}, () =>
  Effect.gen(function*() {
    yield* validateSettings(commandSettings.databaseServer)
    const dataDir = embeddedDataDir(yield* dataDirConfig)
    const address = yield* databaseServerConfig
    const server = yield* makeEmbeddedDatabaseServer({ dataDir, ...address })
    yield* Effect.logInfo("Database server is ready; set DATABASE_URL to its url in other processes").pipe(
      Effect.annotateLogs({ url: server.url, dataDir: server.dataDir })
    )
    return yield* server.failed
  }).pipe(Effect.scoped, Effect.annotateLogs({ service: "database-server" }))
).pipe(
  Command.withDescription(
    "Serve the embedded TimescaleDB over TCP on DATABASE_SERVER_HOST:DATABASE_SERVER_PORT (default 127.0.0.1:5432), so ingest and query processes can share it through DATABASE_URL"
  )
)
