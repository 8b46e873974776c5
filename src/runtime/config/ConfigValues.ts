/**
 * Readers of numeric, boolean and enumerated environment settings whose errors state what was expected. The
 * value itself is added by `describeConfigError` when the process reports the error, so these
 * messages start with "expected".
 *
 * @module
 */
import { Config, ConfigError, Either } from "effect"

/** Inclusive bounds and unit of an integer setting. */
export interface IntegerBounds {
  readonly min?: number | undefined
  readonly max?: number | undefined
  /** Unit named in the error message, such as "milliseconds" or "bytes". */
  readonly unit?: string | undefined
}

/** Describes the accepted values, as in "an integer from 0 to 65535 (milliseconds)". */
export const describeIntegerBounds = (bounds: IntegerBounds): string => {
  const range = bounds.min !== undefined && bounds.max !== undefined
    ? `an integer from ${bounds.min} to ${bounds.max}`
    : bounds.min === 1
    ? "a positive integer"
    : bounds.min !== undefined
    ? `an integer of at least ${bounds.min}`
    : bounds.max !== undefined
    ? `an integer of at most ${bounds.max}`
    : "an integer"
  return bounds.unit === undefined ? range : `${range} (${bounds.unit})`
}

/**
 * Reads an integer setting written in decimal digits with an optional minus sign. Text such as
 * `1e3`, `0x10`, `1.5` or a value outside the bounds fails with `expected …`.
 */
export const integerSetting = (name: string, bounds: IntegerBounds = {}): Config.Config<number> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const trimmed = text.trim()
      const value = Number(trimmed)
      const valid = /^-?\d+$/.test(trimmed) &&
        Number.isSafeInteger(value) &&
        (bounds.min === undefined || value >= bounds.min) &&
        (bounds.max === undefined || value <= bounds.max)
      return valid
        ? Either.right(value)
        : Either.left(ConfigError.InvalidData([name], `expected ${describeIntegerBounds(bounds)}`))
    })
  )

/** Reads a TCP port to listen on, from 0 (any free port) to 65535. */
export const portSetting = (name: string): Config.Config<number> => integerSetting(name, { min: 0, max: 65_535 })

/** Reads `true` or `false`, in any letter case. */
export const booleanSetting = (name: string): Config.Config<boolean> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const normalized = text.trim().toLowerCase()
      if (normalized === "true") return Either.right(true)
      if (normalized === "false") return Either.right(false)
      return Either.left(ConfigError.InvalidData([name], "expected true or false"))
    })
  )

/** Reads one of `choices`, compared without letter case, and returns it in the case given in `choices`. */
export const choiceSetting = <const A extends string>(name: string, choices: readonly [A, ...Array<A>]): Config.Config<A> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const normalized = text.trim().toLowerCase()
      const found = choices.find((choice) => choice.toLowerCase() === normalized)
      return found === undefined
        ? Either.left(ConfigError.InvalidData([name], `expected one of ${choices.join(", ")}`))
        : Either.right(found)
    })
  )
