import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"

/** Address the HTTP server listens on: `HTTP_HOST` (default 127.0.0.1) and `HTTP_PORT` (default 8080; 0 picks a free port). */
export const httpServerConfig = Config.all({
  host: Config.string("HTTP_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.integer("HTTP_PORT").pipe(
    Config.validate({ message: "expected a TCP port from 0 to 65535", validation: (port) => port >= 0 && port <= 65_535 }),
    Config.withDefault(8080)
  )
})

/** Node's HTTP server on the given address; Deno runs it through its `node:http` compatibility. */
export const httpServerLayer = (address: { readonly host: string; readonly port: number }) =>
  NodeHttpServer.layer(createServer, { host: address.host, port: address.port })

/** The HTTP server at the address from `HTTP_HOST` and `HTTP_PORT`. */
export const httpServerLayerConfig = Layer.unwrapEffect(Effect.map(httpServerConfig, httpServerLayer))
