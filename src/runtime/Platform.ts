import { NodeContext, NodeRuntime } from "@effect/platform-node"

/**
 * File system, path, terminal and command services of the platform. Deno runs the Node.js
 * implementations through its `node:` compatibility, so both runtimes share this layer.
 */
export const PlatformLive = NodeContext.layer

/** Runs a program as the process's main fiber: SIGINT and SIGTERM interrupt it, so scopes close and resources are released. */
export const runMain = NodeRuntime.runMain
