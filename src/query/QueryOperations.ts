/**
 * Operations endpoints and readiness of the query service. The query server serves `/metrics`,
 * `/health/live` and `/health/ready` next to the API. The process is ready when a `select 1`
 * on its database succeeds.
 *
 * @module
 */
import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { HealthRegistry } from "../runtime/telemetry/Health.ts"
import { operationsHandlers, operationsPaths } from "../runtime/telemetry/OperationsRoutes.ts"
import { databaseProbe } from "../runtime/telemetry/Probes.ts"

/** Name of the query service's database check in `/health/ready`. */
export const queryDatabaseCheck = "query.database"

/** Adds the operations endpoints to the query API's router. */
export const QueryOperationsRoutes = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const handlers = yield* operationsHandlers
    yield* router.get(operationsPaths.metrics, handlers.metrics)
    yield* router.get(operationsPaths.live, handlers.live)
    yield* router.get(operationsPaths.ready, handlers.ready)
  })
)

/** Registers the database check of the query service while the layer runs. */
export const QueryHealthChecks = Layer.scopedDiscard(
  Effect.gen(function*() {
    const registry = yield* HealthRegistry
    yield* registry.register(queryDatabaseCheck, yield* databaseProbe)
  })
)
