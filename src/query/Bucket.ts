import { ParseResult, Schema } from "effect"

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

/** Smallest and largest bucket widths, in seconds. */
export const bucketLimits = { min: 1, max: 366 * 86_400 } as const

/**
 * A fixed bucket width: a number with a unit (`90s`, `30m`, `1h`, `7d`) or plain seconds (`1800`).
 * Decodes to seconds.
 */
export const BucketParam = Schema.transformOrFail(Schema.String, Schema.Int, {
  strict: true,
  decode: (text, _, ast) => {
    const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim())
    const seconds = match === null ? Number.NaN : Number(match[1]) * (unitSeconds[match[2] || "s"] ?? Number.NaN)
    if (!Number.isSafeInteger(seconds) || seconds < bucketLimits.min || seconds > bucketLimits.max) {
      return ParseResult.fail(
        new ParseResult.Type(ast, text, "expected a bucket width from 1s to 366d, such as 90s, 30m, 1h or 1d")
      )
    }
    return ParseResult.succeed(seconds)
  },
  encode: (seconds) => ParseResult.succeed(`${seconds}s`)
}).annotations({ identifier: "Bucket", description: "Bucket width: 90s, 30m, 1h, 1d, or seconds" })
