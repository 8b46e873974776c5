/**
 * Renders a decoded JSON value for an error message on one line: as JSON, cut to 80 characters,
 * with `undefined`, `Infinity` and `NaN` spelled out.
 */
export const describeValue = (value: unknown): string => {
  if (value === undefined) return "undefined"
  // JSON.stringify writes Infinity and NaN (1e999 parses to Infinity) as null.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value)
  const text = JSON.stringify(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}
