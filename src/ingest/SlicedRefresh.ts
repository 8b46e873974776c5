import type { SqlClient, SqlError } from "@effect/sql"
import { Effect } from "effect"

/** Length of one refresh slice: a day, a multiple of every read model's width. */
const sliceMicros = 86_400e6

/** The catalog's open lower end, after clamping to JavaScript's safe integers. */
const openStart = -9007199254740991

const floorTo = (value: number, width: number) => Math.floor(value / width) * width
const ceilTo = (value: number, width: number) => Math.ceil(value / width) * width

/** Sorts `[start, end)` ranges and merges those that overlap or touch. */
const mergeRanges = (ranges: ReadonlyArray<readonly [number, number]>): Array<[number, number]> => {
  const merged: Array<[number, number]> = []
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1]
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end)
    else merged.push([start, end])
  }
  return merged
}

/**
 * Refreshes the invalidated ranges of the continuous aggregate `view` below `windowEndMicros`,
 * one day of readings per statement, so that writes and queries on the embedded database's
 * single session can run between the statements. Ranges without readings or materialised
 * buckets are refreshed in one statement each, which costs little because there is nothing to
 * read. `invalidated` contains `[lowest, greatest]` ranges, inclusive, in microseconds.
 */
export const refreshInSlices = Effect.fn("StorageMaintenance.refreshInSlices")(function*(
  sql: SqlClient.SqlClient,
  view: string,
  widthMicros: number,
  windowEndMicros: number,
  invalidated: ReadonlyArray<readonly [number, number]>
) {
  const instant = (micros: number) => sql`timestamptz 'epoch' + ${micros}::int8 * interval '1 microsecond'`

  /** Refreshes `[start, end)`; a window of less than one bucket cannot be materialised yet and is left for later. */
  const refreshWindow = (start: number, end: number): Effect.Effect<void, SqlError.SqlError> => {
    if (start <= openStart) return sql`call refresh_continuous_aggregate(${view}::regclass, null::timestamptz, ${instant(end)})`.pipe(Effect.asVoid)
    if (end - start < widthMicros) return Effect.void
    return sql`call refresh_continuous_aggregate(${view}::regclass, ${instant(start)}, ${instant(end)})`.pipe(Effect.asVoid)
  }

  /** Returns the time of the first reading or materialised bucket at or after `from`, in microseconds. */
  const nextDataAt = (from: number) =>
    sql<{ next_us: number | null }>`
      select (extract(epoch from least(
        (select min(time) from sensor_data where time >= ${instant(from)}),
        (select min(bucket) from ${sql(view)} where bucket >= ${instant(from)})
      )) * 1000000)::int8 as next_us`.pipe(Effect.map((rows) => rows[0]?.next_us ?? null))

  for (const [lowest, endExclusive] of mergeRanges(invalidated.map(([lowest, greatest]) => [lowest, greatest + 1]))) {
    const start = lowest <= openStart ? openStart : floorTo(lowest, sliceMicros)
    const end = Math.min(ceilTo(endExclusive, sliceMicros), windowEndMicros)
    if (end <= start) continue
    const first = yield* nextDataAt(Math.max(start, openStart))
    if (first === null || first >= end) {
      yield* refreshWindow(start, end)
      continue
    }
    let cursor = floorTo(first, sliceMicros)
    if (cursor > start) yield* refreshWindow(start, cursor)
    while (cursor < end) {
      const sliceEnd = Math.min(cursor + sliceMicros, end)
      yield* refreshWindow(cursor, sliceEnd)
      cursor = sliceEnd
      if (cursor >= end) break
      const next = yield* nextDataAt(cursor)
      if (next === null || next >= end) {
        yield* refreshWindow(cursor, end)
        break
      }
      const nextSlice = floorTo(next, sliceMicros)
      if (nextSlice > cursor) {
        yield* refreshWindow(cursor, nextSlice)
        cursor = nextSlice
      }
    }
  }
})
