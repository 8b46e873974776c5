import { HttpApiBuilder, HttpApiSwagger, HttpMiddleware, HttpServer } from "@effect/platform"
import { Layer } from "effect"
import { QueryApi } from "./Api.ts"
import { SensorsHandlers } from "./Handlers.ts"
import { SensorQueries } from "./SensorQueries.ts"

/** The query API with its handlers, the OpenAPI document at `/openapi.json` and a docs page at `/docs`. */
export const QueryApiLive = HttpApiBuilder.api(QueryApi).pipe(
  Layer.provide(SensorsHandlers),
  Layer.provide(SensorQueries.Default)
)

/**
 * The read side as a layer: serves the API on whatever `HttpServer` the caller provides, with
 * request logging. It needs a `SqlClient`, which may point at a read replica.
 */
export const QueryServer = HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(QueryApiLive),
  HttpServer.withLogAddress
)
