import { Command } from "@effect/cli"
import { Effect, Layer } from "effect"
import { IngestJob } from "../../ingest/IngestJob.ts"
import { Database, DatabaseInfo } from "../../runtime/database/Database.ts"
import { IngestLive, KafkaFromConfig, KafkaOrLocalBroker, QueryDatabase, QueryLive } from "../Layers.ts"

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

/** `sensor-logger ingest`: the write side alone, consuming from `KAFKA_BROKERS` until stopped. */
export const ingestCommand = Command.make("ingest", {}, () =>
  Effect.zipRight(warnIfEmbedded("ingest"), runUntilStopped).pipe(
    Effect.provide(IngestLive.pipe(Layer.provideMerge(Layer.merge(KafkaFromConfig, Database.layer))))
  )
).pipe(Command.withDescription("Consume readings and sensors from Kafka and write them into TimescaleDB"))

/** `sensor-logger query`: the read side alone, serving HTTP until stopped. */
export const queryCommand = Command.make("query", {}, () =>
  Effect.zipRight(warnIfEmbedded("query"), Effect.never).pipe(
    Effect.provide(QueryLive.pipe(Layer.provideMerge(QueryDatabase)))
  )
).pipe(Command.withDescription("Serve the HTTP query API over the stored readings"))

/**
 * Both sides in one process, sharing one database (the embedded one is a single session) and
 * one Kafka client (a local broker when `KAFKA_BROKERS` is not set).
 */
export const AllInOneLive = Layer.merge(IngestLive, QueryLive).pipe(
  Layer.provideMerge(Layer.merge(KafkaOrLocalBroker, Database.layer))
)

/** `sensor-logger all-in-one`: ingest job and query service in one process. */
export const allInOneCommand = Command.make("all-in-one", {}, () => runUntilStopped.pipe(Effect.provide(AllInOneLive))).pipe(
  Command.withDescription(
    "Run the ingest job and the query service in one process, with a local Kafka broker and the embedded TimescaleDB unless KAFKA_BROKERS and DATABASE_URL are set"
  )
)
