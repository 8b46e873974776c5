/**
 * The HTTP server of the `ingest` command, which has no other: `/metrics`, `/health/live` and
 * `/health/ready` on `INGEST_HTTP_HOST` and `INGEST_HTTP_PORT`. In `all-in-one` the query
 * server serves these endpoints for both sides instead.
 *
 * @module
 */
import { HttpMiddleware, HttpServer } from "@effect/platform"
import { Config, Effect, Layer } from "effect"
import { portSetting } from "../runtime/config/ConfigValues.ts"
import { httpServerLayer } from "../runtime/http/HttpServerLayer.ts"
import { operationsRouter } from "../runtime/telemetry/OperationsRoutes.ts"

/** Address of the operations server: `INGEST_HTTP_HOST` (default 127.0.0.1) and `INGEST_HTTP_PORT` (default 9464; 0 picks a free port). */
export const ingestHttpConfig = Config.all({
  host: Config.string("INGEST_HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: portSetting("INGEST_HTTP_PORT").pipe(Config.withDefault(9464))
})

/** Serves the operations endpoints until the layer is released. */
export const IngestOperationsServer = Layer.unwrapEffect(
  Effect.gen(function*() {
    const address = yield* ingestHttpConfig
    const router = yield* operationsRouter
    const logAddress = Layer.effectDiscard(
      HttpServer.addressFormattedWith((url) => Effect.logInfo("Ingest operations endpoints are listening").pipe(Effect.annotateLogs({ url })))
    )
    return HttpServer.serve(router).pipe(
      HttpMiddleware.withTracerDisabledWhen(() => true),
      Layer.merge(logAddress),
      Layer.provideMerge(httpServerLayer(address, "INGEST_HTTP_PORT"))
    )
  })
)
