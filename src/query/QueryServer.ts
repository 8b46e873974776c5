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

const openApiPath = "/openapi.json"
const docsPath = "/docs"

/** The query API with its handlers, the OpenAPI document at `/openapi.json` and a docs page at `/docs`. */
export const QueryApiLive = HttpApiBuilder.api(QueryApi).pipe(
  Layer.provide(Layer.mergeAll(SensorsHandlers, CatalogHandlers, ReadingsHandlers)),
  Layer.provide(Layer.mergeAll(SensorQueries.Default, AggregateQueries.Default, CatalogQueries.Default, ReadingQueries.Default, ReadOnlyTransaction.Default)),
  Layer.provide(MetricDirectory.Default)
)

/** A routed path as a pattern, with the methods the server accepts on it. */
interface RoutedPath {
  readonly pattern: RegExp
  readonly methods: ReadonlyArray<string>
}

/**
 * Lists every path the server routes with its methods: the API's endpoints, where a `:name`
 * segment matches any one segment, the OpenAPI document, the docs page and the operations
 * endpoints.
 */
const routedPaths = (): ReadonlyArray<RoutedPath> => {
  const methodsByPath = new Map<string, Set<string>>()
  const addRoute = (path: string, method: string) => {
    const methods = methodsByPath.get(path) ?? new Set<string>()
    methods.add(method)
    methodsByPath.set(path, methods)
  }
  for (const group of Object.values(QueryApi.groups)) {
    for (const endpoint of Object.values(group.endpoints)) addRoute(endpoint.path, endpoint.method)
  }
  for (const path of [openApiPath, docsPath, ...operationsPathList]) addRoute(path, "GET")
  return [...methodsByPath].map(([path, methods]) => {
    const segments = path.split("/").map((segment) => {
      if (segment.startsWith(":")) return "[^/]+"
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    })
    return { pattern: new RegExp(`^${segments.join("/")}$`), methods: [...methods].sort() }
  })
}

/**
 * Responds to a request that no route matches with a JSON error, like every other error, instead
 * of an empty body: 405 with an `Allow` header when the path exists with other methods, and 404
 * when it does not exist.
 */
const unmatchedRoute = HttpApiBuilder.Router.use((router) => {
  const paths = routedPaths()
  return router.all(
    "*",
    Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
      const path = request.url.split("?")[0] ?? request.url
      const allowed = paths.find((routed) => routed.pattern.test(path))?.methods
      if (allowed === undefined) {
        return HttpServerResponse.unsafeJson(
          { _tag: "NotFound", message: `no route for ${request.method} ${request.url}; the API is listed at /openapi.json` },
          { status: 404 }
        )
      }
      return HttpServerResponse.unsafeJson(
        {
          _tag: "MethodNotAllowed",
          message: `${request.method} is not allowed on ${path}, which accepts ${allowed.join(", ")}; the API is listed at /openapi.json`
        },
        { status: 405, headers: { allow: allowed.join(", ") } }
      )
    })
  )
})

/** Latency by route; the operations paths are listed because they are served without a span. */
const requestMetrics = httpMetricsMiddleware(operationsPathList)

/**
 * The read side as a layer: serves the API and the operations endpoints on whatever
 * `HttpServer` the caller provides, with request logging and latency metrics. It needs a
 * `SqlClient`, which may point at a read replica, and the process's `HealthRegistry`.
 */
export const QueryServer = HttpApiBuilder.serve((app) => HttpMiddleware.logger(requestMetrics(app))).pipe(
  Layer.provide(unmatchedRoute),
  Layer.provide(QueryOperationsRoutes),
  Layer.provide(HttpApiSwagger.layer({ path: docsPath })),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: openApiPath })),
  Layer.provide(QueryApiLive),
  HttpMiddleware.withTracerDisabledForUrls(operationsPathList),
  HttpServer.withLogAddress
)
