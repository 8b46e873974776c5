import { Config } from "effect"

/** Settings of the query service; docs/configuration.md lists them. */
export interface QueryConfig {
  /** Maximum duration of one query transaction, in milliseconds. */
  readonly statementTimeoutMillis: number
}

/** Reads `QUERY_STATEMENT_TIMEOUT_MS` (default 10,000). */
export const queryConfig: Config.Config<QueryConfig> = Config.all({
  statementTimeoutMillis: Config.integer("QUERY_STATEMENT_TIMEOUT_MS").pipe(
    Config.validate({ message: "expected a positive integer (milliseconds)", validation: (value) => value > 0 }),
    Config.withDefault(10_000)
  )
})
