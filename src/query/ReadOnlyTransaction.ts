import { SqlClient, type SqlError } from "@effect/sql"
import { Data, Duration, Effect, Scope } from "effect"
import { queryConfig } from "./QueryConfig.ts"

/** A query transaction that ran longer than `QUERY_STATEMENT_TIMEOUT_MS`. */
export class QueryTimeout extends Data.TaggedError("QueryTimeout")<{
  readonly limitMillis: number
  readonly message: string
}> {}

/**
 * Runs the query service's statements in read-only transactions with a time limit.
 *
 * Every setting is per transaction (`begin isolation level …`, `set local`), never per
 * session, because the embedded database is one session that the ingest job shares. The transaction is `repeatable read`, so a query that reads the read models' catalog
 * and then the data reads both from one snapshot.
 *
 * The limit is enforced twice. A server cancels a statement after `statement_timeout`
 * (SQLSTATE 57014), and a fiber timeout rolls the transaction back. The embedded database does
 * neither: PGlite 0.3.14 ignores `statement_timeout` (a `pg_sleep(1.5)` under a 200 ms limit
 * returned after 1.5 s), and its statements block the event loop, so no timer fires while one
 * runs. There a transaction that took longer than the limit fails once its statement returns, so
 * the limit still bounds what a client waits for between statements and what it is served.
 *
 * NOTE: the measured time includes the wait for a connection. On the embedded database that
 * connection is shared with the ingest job, so a long write batch counts against a query.
 */
export class ReadOnlyTransaction extends Effect.Service<ReadOnlyTransaction>()("sensor-logger/ReadOnlyTransaction", {
  effect: Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { statementTimeoutMillis } = yield* queryConfig
    const timeout = () =>
      new QueryTimeout({
        limitMillis: statementTimeoutMillis,
        message: `the query took longer than ${statementTimeoutMillis} ms (QUERY_STATEMENT_TIMEOUT_MS); narrow the range or use a coarser bucket`
      })

    // One simple-protocol message (no parameters, so `pg` does not prepare it) opens the
    // transaction and sets its limit, in one round trip where `BEGIN`, `set transaction` and
    // `set_config` took three. The limit is a validated integer from the configuration.
    const begin = `begin isolation level repeatable read, read only; set local statement_timeout = ${statementTimeoutMillis}`
    const withReadOnlyTransaction = SqlClient.makeWithTransaction({
      transactionTag: SqlClient.TransactionConnection,
      spanAttributes: [["db.system", "postgresql"]],
      acquireConnection: Effect.flatMap(Scope.make(), (scope) => Effect.map(Scope.extend(sql.reserve, scope), (connection) => [scope, connection] as const)),
      begin: (connection) => connection.executeUnprepared(begin, [], undefined),
      // Nested `sql.withTransaction` calls find this connection and issue their own savepoints.
      // These two are used only if a caller nests `run`.
      savepoint: (connection, id) => connection.executeUnprepared(`savepoint read_only_${id}`, [], undefined),
      rollbackSavepoint: (connection, id) => connection.executeUnprepared(`rollback to savepoint read_only_${id}`, [], undefined),
      commit: (connection) => connection.executeUnprepared("commit", [], undefined),
      rollback: (connection) => connection.executeUnprepared("rollback", [], undefined)
    })

    const run = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError.SqlError | QueryTimeout, R> =>
      withReadOnlyTransaction(effect).pipe(
        Effect.timed,
        Effect.flatMap(([elapsed, value]) =>
          Duration.toMillis(elapsed) > statementTimeoutMillis ? Effect.fail(timeout()) : Effect.succeed(value)
        ),
        Effect.timeoutFail({ duration: Duration.millis(statementTimeoutMillis), onTimeout: timeout })
      )

    return { run, statementTimeoutMillis } as const
  })
}) {}
