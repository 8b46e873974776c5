import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Data, Effect, Layer } from "effect"
import { portSetting } from "../config/ConfigValues.ts"

/** Address the HTTP server listens on: `HTTP_HOST` (default 127.0.0.1) and `HTTP_PORT` (default 8080; 0 picks a free port). */
export const httpServerConfig = Config.all({
  host: Config.string("HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: portSetting("HTTP_PORT").pipe(Config.withDefault(8080))
})

/** The HTTP server could not listen on its address; `message` names the address and the system's reason. */
export class HttpServerStartError extends Data.TaggedError("HttpServerStartError")<{
  readonly message: string
  readonly cause: unknown
}> {}

/**
 * Node's HTTP server on the given address; Deno runs it through its `node:http` compatibility.
 * `portVariable` names the setting of the port in the error raised when the port is in use.
 */
export const httpServerLayer = (address: { readonly host: string; readonly port: number }, portVariable = "HTTP_PORT") =>
  NodeHttpServer.layer(createServer, { host: address.host, port: address.port }).pipe(
    Layer.mapError((error) => {
      const cause = error.cause as { code?: unknown; message?: unknown } | undefined
      const reason = cause?.code === "EADDRINUSE"
        ? `the port is in use; set ${portVariable} to a free port (0 picks one)`
        : typeof cause?.message === "string"
        ? cause.message
        : String(error.cause)
      return new HttpServerStartError({
        message: `cannot listen on ${address.host}:${address.port}: ${reason}`,
        cause: error.cause
      })
    })
  )

/** The HTTP server at the address from `HTTP_HOST` and `HTTP_PORT`. */
export const httpServerLayerConfig = Layer.unwrapEffect(Effect.map(httpServerConfig, (address) => httpServerLayer(address)))
