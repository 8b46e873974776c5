import * as Net from "node:net"
import { Effect } from "effect"
import { EmbeddedDatabase } from "../../src/runtime/database/EmbeddedDatabase.ts"

/** A loopback TCP endpoint in front of the embedded database that a test can take down and bring back. */
export interface DatabaseBridge {
  readonly port: number
  /** Stops listening and drops every open connection, as a crashed server would. */
  readonly stop: Effect.Effect<void>
  /** Listens again on the same port. */
  readonly start: Effect.Effect<void>
}

/**
 * Bridges each TCP connection on 127.0.0.1 to the embedded database through a PgliteStream, so
 * server mode (a `pg` pool over TCP) can run without a PostgreSQL server. PGlite is one session,
 * so the pool on the other side must have a single connection.
 */
export const makeDatabaseBridge = Effect.gen(function*() {
  const { makeStream } = yield* EmbeddedDatabase
  const sockets = new Set<Net.Socket>()
  let server: Net.Server | undefined
  let port = 0

  const listen = Effect.promise(() =>
    new Promise<void>((resolve, reject) => {
      const next = Net.createServer((socket) => {
        const stream = makeStream()
        sockets.add(socket)
        // The stream keeps PGlite's one session until it is destroyed, and pipe() does not do that.
        socket.on("close", () => {
          sockets.delete(socket)
          stream.destroy()
        })
        socket.on("error", () => stream.destroy())
        stream.on("error", () => socket.destroy())
        socket.pipe(stream).pipe(socket)
      })
      next.once("error", reject)
      next.listen(port, "127.0.0.1", () => {
        port = (next.address() as Net.AddressInfo).port
        server = next
        resolve()
      })
    })
  )

  const stop = Effect.promise(() =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      sockets.clear()
      if (server === undefined) return resolve()
      server.close(() => resolve())
      server = undefined
    })
  )

  yield* Effect.acquireRelease(listen, () => stop)
  return { port, stop, start: listen } satisfies DatabaseBridge
})
