import { Config, Effect, Layer, Logger, LogLevel } from "effect"

const levels: Record<string, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

/** Settings of the process logger: `LOG_LEVEL` (default info) and `LOG_FORMAT` (`logfmt`, `json` or `pretty`). */
export const loggingConfig = Config.all({
  level: Config.literal(...(Object.keys(levels) as [string, ...Array<string>]))("LOG_LEVEL").pipe(
    Config.withDefault("info")
  ),
  format: Config.literal("logfmt", "json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("logfmt" as const))
})

/** Replaces the default logger with the configured format and minimum level. */
export const LoggingLive = Layer.unwrapEffect(
  Effect.map(loggingConfig, ({ format, level }) =>
    Layer.merge(
      format === "json" ? Logger.json : format === "pretty" ? Logger.pretty : Logger.logFmt,
      Logger.minimumLogLevel(levels[level] ?? LogLevel.Info)
    )
  )
)
