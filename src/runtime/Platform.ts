import { NodeContext, NodeRuntime } from "@effect/platform-node"
import type { Effect } from "effect"

/**
 * File system, path, terminal and command services of the platform. Deno runs the Node.js
 * implementations through its `node:` compatibility, so both runtimes share this layer.
 */
export const PlatformLive = NodeContext.layer

/**
 * Runs a program as the process's main fiber: SIGINT and SIGTERM interrupt it, so scopes close
 * and resources are released. The program installs its own logger (`LoggingLive`), so the
 * platform's pretty logger is turned off rather than printing every line twice.
 */
export const runMain = <E, A>(program: Effect.Effect<A, E>): void =>
  NodeRuntime.runMain(program, { disablePrettyLogger: true })
