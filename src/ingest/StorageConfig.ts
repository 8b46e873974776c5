import { Config, ConfigError, Either, Option } from "effect"
import { integerSetting } from "../runtime/config/ConfigValues.ts"

/** Settings of the storage policies that the ingest job applies at every start. */
export interface StorageConfig {
  /** Age after which a chunk of `sensor_data` is compressed, as a PostgreSQL interval, or none. */
  readonly compressAfter: Option.Option<string>
  /** Age after which a chunk of `sensor_data` is dropped, as a PostgreSQL interval, or none. */
  readonly retention: Option.Option<string>
  /**
   * Time between refreshes of the continuous aggregates, in milliseconds: the schedule of the
   * refresh policies on a server, and the period of the in-process refresher on the embedded
   * database. 0 turns the in-process refresher off.
   */
  readonly refreshIntervalMillis: number
}

const intervalPattern = /^(\d{1,6})\s*(minute|hour|day|week|month|year)s?$/i

/**
 * An age such as `7 days`, `12 hours` or `1 year`, or `off`. Decodes to a PostgreSQL interval
 * literal built from the matched number and unit only, so the value can be inlined in SQL.
 */
const ageConfig = (name: string, fallback: string) =>
  Config.string(name).pipe(
    Config.withDefault(fallback),
    Config.mapOrFail((text) => {
      const trimmed = text.trim()
      if (trimmed.toLowerCase() === "off") return Either.right(Option.none<string>())
      const match = intervalPattern.exec(trimmed)
      if (match === null || Number(match[1]) === 0) {
        return Either.left(
          ConfigError.InvalidData(
            [name],
            `${JSON.stringify(text)} is not an age: expected a positive number and a unit (minutes, hours, days, weeks, months, years), such as "7 days", or "off"`
          )
        )
      }
      return Either.right(Option.some(`${Number(match[1])} ${match[2]!.toLowerCase()}s`))
    })
  )

/** Reads the storage settings; docs/configuration.md lists the defaults. */
export const storageConfig: Config.Config<StorageConfig> = Config.all({
  compressAfter: ageConfig("STORAGE_COMPRESS_AFTER", "7 days"),
  retention: ageConfig("STORAGE_RETENTION", "off"),
  refreshIntervalMillis: integerSetting("READ_MODEL_REFRESH_INTERVAL_MS", { min: 0, unit: "milliseconds" }).pipe(Config.withDefault(60_000))
})
