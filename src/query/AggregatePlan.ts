/**
 * Splits a bucketed request between a continuous aggregate and the raw readings.
 *
 * A read model of width `w` can serve the part of `[from, to)` that is aligned to `w`, lies below
 * its watermark (the end of what it has materialised) and is not invalidated (written to since
 * its last refresh). It can serve a requested bucket only when every bucket boundary inside the
 * range is a multiple of `w`, so that each of its buckets falls into exactly one requested
 * bucket. The rest of the range is read from `sensor_data`. Both parts yield the same partial
 * aggregates, which the query combines, so the result equals one computed from raw readings
 * alone (up to the order in which floating-point sums are added).
 */

/** A half-open range `[start, end)` in microseconds since 1970. */
export type Range = readonly [start: number, end: number]

/** State of one continuous aggregate, as the database reports it. */
export interface ReadModelState {
  readonly name: string
  readonly widthMicros: number
  /** End of the materialised data, in microseconds. */
  readonly watermarkMicros: number
  /** Ranges written to since the last refresh, `[lowest, greatest]` inclusive, in microseconds. */
  readonly invalidated: ReadonlyArray<readonly [number, number]>
}

/** The plan of one request. */
export interface AggregatePlan {
  readonly readModel: { readonly name: string; readonly widthMicros: number } | undefined
  /** Ranges served from the read model, each aligned to its width. */
  readonly readModelRanges: ReadonlyArray<Range>
  /** Ranges served from `sensor_data`. */
  readonly rawRanges: ReadonlyArray<Range>
}

/**
 * Most ranges a plan serves from the read model. Each becomes one condition of the SQL
 * statement, so a read model with many scattered invalidations has its shortest ranges read
 * raw instead.
 */
export const maxReadModelRanges = 16

const floorTo = (value: number, width: number) => Math.floor(value / width) * width
const ceilTo = (value: number, width: number) => Math.ceil(value / width) * width

/** Sorts and merges overlapping or touching ranges. */
export const mergeRanges = (ranges: ReadonlyArray<Range>): Array<Range> => {
  const sorted = ranges.filter(([start, end]) => start < end).sort((a, b) => a[0] - b[0])
  const merged: Array<[number, number]> = []
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1]
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end)
    else merged.push([start, end])
  }
  return merged
}

/** Returns the parts of `outer` that none of `holes` covers. */
export const subtractRanges = (outer: Range, holes: ReadonlyArray<Range>): Array<Range> => {
  const result: Array<Range> = []
  let cursor = outer[0]
  for (const [start, end] of mergeRanges(holes)) {
    if (end <= cursor || start >= outer[1]) continue
    if (start > cursor) result.push([cursor, start])
    cursor = Math.max(cursor, end)
  }
  if (cursor < outer[1]) result.push([cursor, outer[1]])
  return result
}

/** A plan that reads every bucket from `sensor_data`. */
export const rawPlan = (from: number, to: number): AggregatePlan => ({
  readModel: undefined,
  readModelRanges: [],
  rawRanges: [[from, to]]
})

/**
 * Plans `[from, to)` with bucket starts `starts` (ascending, the first at or before `from`) over
 * the coarsest read model that can serve part of it.
 */
export const planAggregate = (
  from: number,
  to: number,
  starts: ReadonlyArray<number>,
  readModels: ReadonlyArray<ReadModelState>
): AggregatePlan => {
  const innerBoundaries = starts.filter((start) => start > from)
  const coarsestFirst = [...readModels].sort((a, b) => b.widthMicros - a.widthMicros)
  for (const model of coarsestFirst) {
    const width = model.widthMicros
    if (!innerBoundaries.every((boundary) => boundary % width === 0)) continue
    const start = ceilTo(from, width)
    const end = Math.min(floorTo(to, width), floorTo(model.watermarkMicros, width))
    if (start >= end) continue
    const stale = model.invalidated.map(([lowest, greatest]): Range => [floorTo(lowest, width), ceilTo(greatest + 1, width)])
    let served = subtractRanges([start, end], stale)
    if (served.length > maxReadModelRanges) {
      served = served.sort((a, b) => (b[1] - b[0]) - (a[1] - a[0])).slice(0, maxReadModelRanges).sort((a, b) => a[0] - b[0])
    }
    if (served.length === 0) continue
    return {
      readModel: { name: model.name, widthMicros: width },
      readModelRanges: served,
      rawRanges: subtractRanges([from, to], served)
    }
  }
  return rawPlan(from, to)
}
