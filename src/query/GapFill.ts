import { Schema } from "effect"

/** Fill mode of an aggregate series: the value that buckets without readings get. */
export const fillModes = ["none", "null", "previous", "linear"] as const
export const FillMode = Schema.Literal(...fillModes).annotations({
  identifier: "Fill",
  description:
    "Buckets without readings: none (left out), null, previous (the last value before), linear (interpolated between the values around)",
  message: (issue) => `${JSON.stringify(issue.actual)} is not a fill mode: expected one of ${fillModes.join(", ")}`
})
export type FillMode = typeof FillMode.Type

/**
 * Fills the series `values` (bucket start to value) over every bucket of `starts`.
 *
 * - `none` keeps only the buckets that have a value;
 * - `null` gives the others `null`;
 * - `previous` gives them the value of the latest earlier bucket, or `null` before the first;
 * - `linear` interpolates between the buckets around by bucket start, or `null` outside them.
 *
 * `emptyValue`, when given, is the value of a bucket without readings whatever the mode but
 * `none` (0 for counts, which are not samples of a signal).
 */
export const fillSeries = (
  starts: ReadonlyArray<number>,
  values: ReadonlyMap<number, number | null>,
  mode: FillMode,
  emptyValue?: number
): Array<readonly [number, number | null]> => {
  if (mode === "none") return starts.filter((start) => values.has(start)).map((start) => [start, values.get(start) ?? null])
  const known = starts.flatMap((start) => {
    const value = values.get(start)
    return value === undefined || value === null ? [] : [[start, value] as const]
  })
  let next = 0
  return starts.map((start) => {
    const value = values.get(start)
    if (value !== undefined) return [start, value]
    if (emptyValue !== undefined) return [start, emptyValue]
    while (next < known.length && known[next]![0] < start) next++
    const before = known[next - 1]
    const after = known[next]
    if (mode === "previous") return [start, before?.[1] ?? null]
    if (mode === "linear" && before !== undefined && after !== undefined) {
      const fraction = (start - before[0]) / (after[0] - before[0])
      return [start, before[1] + (after[1] - before[1]) * fraction]
    }
    return [start, null]
  })
}
