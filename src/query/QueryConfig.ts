import { Config } from "effect"
import { integerSetting } from "../runtime/config/ConfigValues.ts"

/** Settings of the query service; docs/configuration.md lists them. */
export interface QueryConfig {
  /** Maximum duration of one query transaction, in milliseconds. */
  readonly statementTimeoutMillis: number
}

/** Reads `QUERY_STATEMENT_TIMEOUT_MS` (default 10,000). */
export const queryConfig: Config.Config<QueryConfig> = Config.all({
  statementTimeoutMillis: integerSetting("QUERY_STATEMENT_TIMEOUT_MS", { min: 1, unit: "milliseconds" }).pipe(Config.withDefault(10_000))
})
