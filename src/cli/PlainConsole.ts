/**
 * The help text of @effect/cli 0.77 is rendered by @effect/printer-ansi 0.51 with the "pretty"
 * style, which always emits ANSI colour codes: neither library reads `NO_COLOR` or checks for a
 * terminal, and `CliConfig` has no colour setting. The CLI therefore runs with a console that
 * removes those codes from what it prints when colours are off.
 *
 * @module
 */
import { Console, Effect } from "effect"
import process from "node:process"

/** ANSI "select graphic rendition" sequences, which set colours and text styles such as bold. */
const sgrSequence = /\u001b\[[0-9;]*m/g

const stripColours = (value: unknown): unknown => (typeof value === "string" ? value.replace(sgrSequence, "") : value)

/**
 * Tells whether output to `stream` may be coloured. It may when `NO_COLOR` is unset or empty
 * (https://no-color.org) and the stream is a terminal.
 */
const coloursOn = (stream: { readonly isTTY?: boolean }): boolean => {
  const noColor = process.env["NO_COLOR"]
  return (noColor === undefined || noColor === "") && stream.isTTY === true
}

/**
 * Returns `base` with ANSI colour codes removed from the strings that `log`, `info` and `debug`
 * write to stdout and that `error` and `warn` write to stderr, each when that stream gets no colours.
 */
export const plainConsole = (base: Console.Console): Console.Console => {
  type Write = (...args: ReadonlyArray<unknown>) => Effect.Effect<void>
  const plain = (stream: { readonly isTTY?: boolean }, write: Write): Write =>
    coloursOn(stream) ? write : (...args) => write(...args.map(stripColours))
  return {
    ...base,
    log: plain(process.stdout, (...args) => base.log(...args)),
    info: plain(process.stdout, (...args) => base.info(...args)),
    debug: plain(process.stdout, (...args) => base.debug(...args)),
    error: plain(process.stderr, (...args) => base.error(...args)),
    warn: plain(process.stderr, (...args) => base.warn(...args))
  }
}

/** Runs `effect` with the current console wrapped by `plainConsole`. */
export const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((base) => Effect.withConsole(effect, plainConsole(base)))
