import { Effect } from "effect"

/** Result of `writeIsolatingRejections`: what it stored and which items it could not store. */
export interface IsolatedWrite<T, E> {
  /** Sum of what the successful writes returned (rows, for the sensor data writer). */
  readonly written: number
  /** The items that failed on their own, each with its error, in input order. */
  readonly rejected: ReadonlyArray<{ readonly item: T; readonly error: E }>
  /** Writes attempted, the first one included. */
  readonly attempts: number
}

/**
 * Writes `items` with `write`, and when it fails, splits them in two halves and writes each the
 * same way, until every failing item is alone. `write` must fail only for errors caused by the
 * items (it retries the others itself), and must write all of its items or none.
 *
 * The halves are written left before right, so items are stored in input order, as one write
 * would have stored them. When a later item overwrites an earlier one with the same key, the
 * result therefore does not depend on where the splits fall. `k` rejected items out of `n` cost about
 * `2·k·log2(n)` writes, and the valid items are written once each.
 */
export const writeIsolatingRejections = <T, E, R>(
  items: ReadonlyArray<T>,
  write: (items: ReadonlyArray<T>) => Effect.Effect<number, E, R>
): Effect.Effect<IsolatedWrite<T, E>, never, R> =>
  Effect.gen(function*() {
    let written = 0
    let attempts = 0
    const rejected: Array<{ item: T; error: E }> = []
    // Ranges still to write, as a stack whose top is the leftmost range.
    const pending: Array<readonly [number, number]> = items.length === 0 ? [] : [[0, items.length]]
    while (pending.length > 0) {
      const [start, end] = pending.pop()!
      attempts += 1
      const result = yield* Effect.either(write(items.slice(start, end)))
      if (result._tag === "Right") {
        written += result.right
        continue
      }
      if (end - start === 1) {
        rejected.push({ item: items[start]!, error: result.left })
        continue
      }
      const middle = start + Math.ceil((end - start) / 2)
      pending.push([middle, end], [start, middle])
    }
    return { written, rejected, attempts }
  })
