import { Either } from "effect"

/** The position after the last reading of a page: its time, sensor and metric id. */
export interface ReadingKey {
  readonly timeMicros: number
  readonly sensorId: number
  readonly metricId: number
}

/** Contents of a cursor: the key of the last reading served and the query it belongs to. */
interface CursorContents {
  readonly key: ReadingKey
  /** Hash of the filters and the order, so a cursor is not reused for another query. */
  readonly query: string
}

/** FNV-1a over `text`, as 8 hex digits; enough to tell queries apart, not a security measure. */
const hashText = (text: string): string => {
  let hash = 0x811c9dc5
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash.toString(16).padStart(8, "0")
}

/** The fingerprint of a reading query, from its filters and order. */
export const queryFingerprint = (query: unknown): string => hashText(JSON.stringify(query))

/** Encodes the position after `key` in the query `fingerprint` as an opaque URL-safe string. */
export const encodeCursor = (key: ReadingKey, fingerprint: string): string =>
  Buffer.from(JSON.stringify([1, key.timeMicros, key.sensorId, key.metricId, fingerprint])).toString("base64url")

/** Decodes a cursor of `encodeCursor`, or returns why it is not one for the query `fingerprint`. */
export const decodeCursor = (cursor: string, fingerprint: string): Either.Either<ReadingKey, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
  } catch {
    return Either.left("expected the next_cursor of a previous page")
  }
  if (
    !Array.isArray(parsed) || parsed.length !== 5 || parsed[0] !== 1 ||
    !parsed.slice(1, 4).every((part) => Number.isSafeInteger(part)) || typeof parsed[4] !== "string"
  ) {
    return Either.left("expected the next_cursor of a previous page")
  }
  const contents: CursorContents = {
    key: { timeMicros: parsed[1], sensorId: parsed[2], metricId: parsed[3] },
    query: parsed[4]
  }
  if (contents.query !== fingerprint) {
    return Either.left("the cursor belongs to a query with other filters or another order; repeat them unchanged, or drop cursor to start over")
  }
  return Either.right(contents.key)
}
