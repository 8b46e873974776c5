import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { readingsTopic } from "../../domain/Message.ts"
import { formatEpochMicros } from "../../domain/Timestamp.ts"
import { replayCsv, type ReplaySummary } from "../../tools/replay/Replay.ts"

const file = Args.file({ name: "file", exists: "yes" }).pipe(
  Args.withDescription("CSV file to replay, UTF-8, with a header row")
)

const options = {
  column: Options.text("column").pipe(
    Options.repeated,
    Options.withDescription(
      "CSV column to send and its metric name, as CSV=metric (Temperature=temperature), or CSV alone to keep the name. " +
        "Repeat it for each column. Without any, every numeric column is sent under its own name"
    )
  ),
  timeColumn: Options.text("time-column").pipe(
    Options.withDefault("date"),
    Options.withDescription("Name of the column that contains the timestamps. Default: date")
  ),
  timeFormat: Options.text("time-format").pipe(
    Options.withDefault("iso"),
    Options.withDescription(
      "Format of the timestamps: iso (ISO-8601), unix (seconds since 1970, fractions allowed), unix-ms (milliseconds " +
        "since 1970) or a strftime pattern such as \"%Y-%m-%d %H:%M:%S\" (directives %Y %y %m %b %B %d %e %H %I %p %M %S %f %z %T %F %R %%). " +
        "Default: iso"
    )
  ),
  timeZone: Options.text("time-zone").pipe(
    Options.withDefault("UTC"),
    Options.withDescription(
      "Time zone of timestamps that carry no offset: UTC, a fixed offset (+01:00, -0530) or an IANA name (Europe/Brussels). " +
        "A local time skipped by a daylight-saving change is an error, and a repeated one takes the earlier instant. Default: UTC"
    )
  ),
  sensorId: Options.integer("sensor-id").pipe(
    Options.optional,
    Options.withDescription("Sensor id (a non-negative integer) of every reading; use this or --sensor-id-column")
  ),
  sensorIdColumn: Options.text("sensor-id-column").pipe(
    Options.optional,
    Options.withDescription("Name of the column that contains each row's sensor id; use this or --sensor-id")
  ),
  perMessage: Options.integer("per-message").pipe(
    Options.withDefault(100),
    Options.withDescription("Maximum readings in one Kafka message, a JSON array of readings of one sensor. Default: 100")
  ),
  topic: Options.text("topic").pipe(
    Options.withDefault(readingsTopic),
    Options.withDescription(`Kafka topic to send the messages to. Default: ${readingsTopic}`)
  ),
  rate: Options.float("rate").pipe(
    Options.optional,
    Options.withDescription("Maximum readings sent per second, on average since the start. Default: unlimited")
  ),
  delimiter: Options.text("delimiter").pipe(
    Options.withDefault(","),
    Options.withDescription("Field separator of the CSV file, one character. Default: ,")
  ),
  skipInvalid: Options.boolean("skip-invalid").pipe(
    Options.withDescription(
      "Skip rows with an invalid timestamp, sensor id or field count, log the first 10 of them and count them all in the " +
        "summary (invalidRows). Without it, the replay sends the rows before the first invalid row and stops there with exit code 1"
    )
  )
}

const formatInstant = (micros: number | null) => (micros === null ? "none" : formatEpochMicros(micros))

const formatSummary = (summary: ReplaySummary): string =>
  [
    `rows          ${summary.rows}`,
    `readings      ${summary.readings}`,
    `messages      ${summary.messages}`,
    `skippedCells  ${summary.skippedCells}`,
    `invalidRows   ${summary.invalidRows}`,
    `firstTs       ${formatInstant(summary.firstTs)}`,
    `lastTs        ${formatInstant(summary.lastTs)}`,
    `seconds       ${summary.seconds.toFixed(3)}`
  ].join("\n")

/**
 * `sensor-logger replay FILE`: sends the rows of a CSV data set to Kafka as readings in the
 * original message format. Needs `KafkaProducer` and `FileSystem` from the environment.
 */
export const replayCommand = Command.make("replay", { file, ...options }, (args) =>
  Effect.gen(function*() {
    const summary = yield* replayCsv({
      file: args.file,
      columns: args.column,
      timeColumn: args.timeColumn,
      timeFormat: args.timeFormat,
      timeZone: args.timeZone,
      perMessage: args.perMessage,
      topic: args.topic,
      delimiter: args.delimiter,
      skipInvalid: args.skipInvalid,
      ...Option.match(args.sensorId, { onNone: () => ({}), onSome: (sensorId) => ({ sensorId }) }),
      ...Option.match(args.sensorIdColumn, { onNone: () => ({}), onSome: (sensorIdColumn) => ({ sensorIdColumn }) }),
      ...Option.match(args.rate, { onNone: () => ({}), onSome: (rate) => ({ rate }) })
    })
    yield* Console.log(formatSummary(summary))
  })
).pipe(Command.withDescription("Replay a CSV data set into Kafka as sensor readings in the original message format"))
