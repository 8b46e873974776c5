/**
 * Request latency of an HTTP server as a Prometheus histogram, by method, route and status.
 *
 * @module
 */
import { type HttpApp, HttpMiddleware, HttpServerError, HttpServerRequest } from "@effect/platform"
import { Clock, Effect, Metric, MetricBoundaries, Option } from "effect"

/** Bucket bounds in seconds: 1 ms to 10 s. */
const latencyBoundaries = MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

const requestDuration = Metric.histogram(
  "sensor_logger_http_server_request_duration_seconds",
  latencyBoundaries,
  "Time from receiving an HTTP request to its response, by method, route and status."
)

/** Route label of requests that no route matched, so unknown paths cannot grow the label set. */
export const unmatchedRoute = "unmatched"

/**
 * Returns the route of a finished request: the `http.route` that the router set on the request's
 * span, or the path when it is one of `staticPaths` (for routes served with tracing disabled),
 * or `unmatched`.
 */
const routeOf = (path: string, staticPaths: ReadonlySet<string>) =>
  Effect.map(Effect.option(Effect.currentSpan), (span) => {
    const route = Option.isSome(span) ? span.value.attributes.get("http.route") : undefined
    if (typeof route === "string" && route !== "*") return route
    return staticPaths.has(path) ? path : unmatchedRoute
  })

/**
 * Records the duration of every request in `sensor_logger_http_server_request_duration_seconds`.
 * `staticPaths` lists fixed paths that may be served without a span, such as `/metrics`.
 */
export const httpMetricsMiddleware = (staticPaths: Iterable<string>) => {
  const known = new Set(staticPaths)
  return HttpMiddleware.make(<E, R>(app: HttpApp.Default<E, R>) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const started = yield* Clock.currentTimeNanos
      const exit = yield* Effect.exit(app)
      const seconds = Number((yield* Clock.currentTimeNanos) - started) / 1e9
      const status = HttpServerError.exitResponse(exit).status
      const path = request.url.split("?")[0] ?? request.url
      const route = yield* routeOf(path, known)
      yield* Metric.update(
        requestDuration.pipe(
          Metric.tagged("method", request.method),
          Metric.tagged("route", route),
          Metric.tagged("status", String(status))
        ),
        seconds
      )
      return yield* exit
    })
  )
}
