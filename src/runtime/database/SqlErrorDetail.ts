import type { SqlError } from "@effect/sql"

/** The database's own account of a failed statement, which `SqlError.message` leaves out. */
export interface SqlErrorDetail {
  /** `SqlError.message`, followed by the driver's or the server's message when there is one. */
  readonly detail: string
  /** The five-character SQLSTATE code, or "" when the failure did not come from the database (a lost connection). */
  readonly sqlState: string
}

/**
 * Reads the driver error behind a `SqlError`. `@effect/sql` gives a failed statement a generic
 * message ("Failed to execute statement") and keeps the `pg` or PGlite error, with its message
 * and SQLSTATE `code`, as the cause.
 */
export const sqlErrorDetail = (error: SqlError.SqlError): SqlErrorDetail => {
  const cause = error.cause as { message?: unknown; code?: unknown } | undefined
  return {
    detail: typeof cause?.message === "string" ? `${error.message}: ${cause.message}` : error.message,
    sqlState: typeof cause?.code === "string" ? cause.code : ""
  }
}
