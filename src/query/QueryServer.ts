import { HttpApiBuilder, HttpApiSwagger, HttpMiddleware, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { httpMetricsMiddleware } from "../runtime/telemetry/HttpMetrics.ts"
import { operationsPathList } from "../runtime/telemetry/OperationsRoutes.ts"
import { QueryApi } from "./Api.ts"
import { AggregateQueries } from "./AggregateQueries.ts"
import { CatalogHandlers } from "./CatalogHandlers.ts"
import { CatalogQueries } from "./CatalogQueries.ts"
import { SensorsHandlers } from "./Handlers.ts"
import { QueryOperationsRoutes } from "./QueryOperations.ts"
import { MetricDirectory } from "./MetricDirectory.ts"
import { ReadingQueries } from "./ReadingQueries.ts"
import { ReadingsHandlers } from "./ReadingsHandlers.ts"
import { ReadOnlyTransaction } from "./ReadOnlyTransaction.ts"
import { SensorQueries } from "./SensorQueries.ts"

/** The query API with its handlers, the OpenAPI document at `/openapi.json` and a docs page at `/docs`. */
export const QueryApiLive = HttpApiBuilder.api(QueryApi).pipe(
  Layer.provide(Layer.mergeAll(SensorsHandlers, CatalogHandlers, ReadingsHandlers)),
  Layer.provide(Layer.mergeAll(SensorQueries.Default, AggregateQueries.Default, CatalogQueries.Default, ReadingQueries.Default, ReadOnlyTransaction.Default)),
  Layer.provide(MetricDirectory.Default)
)

/** Responds to a path that no route matches with a JSON 404, like every other error, instead of an empty body. */
const notFound = HttpApiBuilder.Router.use((router) =>
  router.all(
    "*",
    Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
      HttpServerResponse.unsafeJson(
        { _tag: "NotFound", message: `no route for ${request.method} ${request.url}; the API is listed at /openapi.json` },
        { status: 404 }
      ))
  )
)

/** Latency by route; the operations paths are listed because they are served without a span. */
const requestMetrics = httpMetricsMiddleware(operationsPathList)

/**
 * The read side as a layer: serves the API and the operations endpoints on whatever
 * `HttpServer` the caller provides, with request logging and latency metrics. It needs a
 * `SqlClient`, which may point at a read replica, and the process's `HealthRegistry`.
 */
export const QueryServer = HttpApiBuilder.serve((app) => HttpMiddleware.logger(requestMetrics(app))).pipe(
  Layer.provide(notFound),
  Layer.provide(QueryOperationsRoutes),
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(QueryApiLive),
  HttpMiddleware.withTracerDisabledForUrls(operationsPathList),
  HttpServer.withLogAddress
)
