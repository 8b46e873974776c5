import { Command } from "@effect/cli"
import { Effect, Layer } from "effect"
import { IngestJob } from "../../ingest/IngestJob.ts"
import { IngestOperationsServer } from "../../ingest/IngestOperationsServer.ts"
import { Database, DatabaseInfo } from "../../runtime/database/Database.ts"
import { HealthRegistry } from "../../runtime/telemetry/Health.ts"
import { TracingLive } from "../../runtime/telemetry/Tracing.ts"
import { IngestLive, KafkaFromConfig, KafkaOrLocalBroker, QueryDatabase, QueryLive } from "../Layers.ts"
import { commandSettings, serviceNames, validateSettings } from "../Settings.ts"

/** Runs until interrupted, or fails when the ingest job's consumer has stopped for good. */
export const runUntilStopped = Effect.flatMap(IngestJob, (job) => job.stopped)

/**
 * Warns that a side running alone keeps its data in its own embedded database, which no other
 * process can open while it runs: an ingest and a query process need a shared server.
 */
const warnIfEmbedded = (side: "ingest" | "query") =>
  Effect.flatMap(DatabaseInfo, (info) =>
    info.mode === "embedded"
      ? Effect.logWarning(
        `The ${side} command uses the embedded database; no other process can read or write it while this one runs. ` +
          "Set DATABASE_URL to share a TimescaleDB server between ingest and query processes, or run all-in-one."
      ).pipe(Effect.annotateLogs({ dataDir: info.dataDir }))
      : Effect.void
  )

/**
 * Runs a service command: checks all its settings first, then runs `program` on `layer` with the
 * OTLP tracer outermost. Spans of the layers' start and stop are thus exported too, and the last
 * spans are flushed after everything else has stopped.
 */
export const runService = <A, E, R, LE>(
  settings: Parameters<typeof validateSettings>[0],
  serviceName: string,
  program: Effect.Effect<A, E, R>,
  layer: Layer.Layer<R, LE>
) =>
  Effect.zipRight(
    validateSettings(settings),
    program.pipe(Effect.provide(layer), Effect.provide(TracingLive(serviceName)))
  )

/**
 * The ingest job with its operations server (`/metrics`, `/health/*` on `INGEST_HTTP_HOST` and
 * `INGEST_HTTP_PORT`), consuming from `KAFKA_BROKERS`.
 */
export const IngestServiceLive = Layer.merge(IngestLive, IngestOperationsServer.pipe(Layer.provide(HealthRegistry.Default))).pipe(
  Layer.provideMerge(Layer.merge(KafkaFromConfig, Database.layer))
)

/** `sensor-logger ingest`: the write side alone, consuming from `KAFKA_BROKERS` until stopped. */
export const ingestCommand = Command.make("ingest", {}, () =>
  runService(
    commandSettings.ingest,
    serviceNames.ingest,
    Effect.zipRight(warnIfEmbedded("ingest"), runUntilStopped),
    IngestServiceLive
  ).pipe(Effect.annotateLogs({ service: "ingest" }))).pipe(
    Command.withDescription("Consume readings and sensors from Kafka and write them into TimescaleDB")
  )

/** `sensor-logger query`: the read side alone, serving HTTP until stopped. */
export const queryCommand = Command.make("query", {}, () =>
  runService(
    commandSettings.query,
    serviceNames.query,
    Effect.zipRight(warnIfEmbedded("query"), Effect.never),
    QueryLive.pipe(Layer.provideMerge(QueryDatabase))
  ).pipe(Effect.annotateLogs({ service: "query" }))).pipe(
    Command.withDescription("Serve the HTTP query API over the stored readings")
  )

/**
 * Both sides in one process, sharing one database (the embedded one is a single session), one
 * Kafka client (a local broker when `KAFKA_BROKERS` is not set) and one health registry. The
 * query server serves `/metrics` and `/health/*` for both; no ingest operations server starts.
 */
export const AllInOneLive = Layer.merge(IngestLive, QueryLive).pipe(
  Layer.provideMerge(Layer.merge(KafkaOrLocalBroker, Database.layer))
)

/** `sensor-logger all-in-one`: ingest job and query service in one process. */
export const allInOneCommand = Command.make("all-in-one", {}, () =>
  runService(commandSettings.allInOne, serviceNames.allInOne, runUntilStopped, AllInOneLive).pipe(
    Effect.annotateLogs({ service: "all-in-one" })
  )).pipe(
    Command.withDescription(
      "Run the ingest job and the query service in one process, with a local Kafka broker and the embedded TimescaleDB unless KAFKA_BROKERS and DATABASE_URL are set"
    )
  )
