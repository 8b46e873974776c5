import { Config } from "effect"
import { integerSetting } from "../runtime/config/ConfigValues.ts"

/** Settings of the query service; docs/configuration.md lists them. */
export interface QueryConfig {
  /** Maximum duration of one query transaction, in milliseconds. */
  readonly statementTimeoutMillis: number
}

/** Reads `QUERY_STATEMENT_TIMEOUT_MS` (default 10,000). */
export const queryConfig: Config.Config<QueryConfig> = Config.all({
  // PostgreSQL rejects a statement_timeout above 2^31 - 1 ms, and every query would then fail.
  statementTimeoutMillis: integerSetting("QUERY_STATEMENT_TIMEOUT_MS", { min: 1, max: 2_147_483_647, unit: "milliseconds" }).pipe(
    Config.withDefault(10_000)
  )
})
