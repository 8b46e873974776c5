/**
 * The operations endpoints of a service: `/metrics` (Prometheus text), `/health/live` and
 * `/health/ready` (JSON). They are neither logged nor traced per request, because Prometheus and
 * orchestrators call them every few seconds.
 *
 * @module
 */
import { HttpMiddleware, HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { HealthRegistry } from "./Health.ts"
import { prometheusContentType, prometheusSnapshot } from "./PrometheusText.ts"

/** Paths of the operations endpoints. */
export const operationsPaths = {
  metrics: "/metrics",
  live: "/health/live",
  ready: "/health/ready"
} as const

/** Every operations path, for `HttpMiddleware.withTracerDisabledForUrls` and the latency metric's route label. */
export const operationsPathList: ReadonlyArray<string> = Object.values(operationsPaths)

const metricsResponse = Effect.map(
  prometheusSnapshot,
  (body) => HttpServerResponse.text(body, { contentType: prometheusContentType })
)

/** The process serves HTTP, so it is alive; readiness is reported separately. */
const liveResponse = Effect.succeed(HttpServerResponse.unsafeJson({ status: "alive" }))

const readyResponse = (registry: HealthRegistry) =>
  Effect.map(registry.readiness, (report) =>
    HttpServerResponse.unsafeJson(report, { status: report.status === "ready" ? 200 : 503 }))

/** The three handlers, resolved against the process's health registry. */
export const operationsHandlers = Effect.map(HealthRegistry, (registry) => ({
  metrics: HttpMiddleware.withLoggerDisabled(metricsResponse),
  live: HttpMiddleware.withLoggerDisabled(liveResponse),
  ready: HttpMiddleware.withLoggerDisabled(readyResponse(registry))
}))

/** A router that serves only the operations endpoints, for a process without another HTTP server. */
export const operationsRouter = Effect.map(operationsHandlers, (handlers) =>
  HttpRouter.empty.pipe(
    HttpRouter.get(operationsPaths.metrics, handlers.metrics),
    HttpRouter.get(operationsPaths.live, handlers.live),
    HttpRouter.get(operationsPaths.ready, handlers.ready)
  ))
