import type { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Chunk, Clock, Duration, Effect, Either, ParseResult, Schema, Stream } from "effect"
import type { Message } from "kafkajs"
import { readingsTopic } from "../../domain/Message.ts"
import { MetricName } from "../../domain/MetricName.ts"
import { SensorId } from "../../domain/SensorId.ts"
import { type EpochMicros, formatEpochMicros } from "../../domain/Timestamp.ts"
import type { KafkaError } from "../../runtime/kafka/KafkaError.ts"
import { KafkaProducer } from "../../runtime/kafka/KafkaProducer.ts"
import { type CsvError, type CsvHeader, type CsvRecord, fieldCountError, readCsvFile, splitStream } from "./Csv.ts"
import {
  type InvalidTimeFormat,
  type InvalidTimestamp,
  type InvalidTimeZone,
  makeTimestampParser,
  type ParseTimestamp,
  parseTimeZone
} from "./TimeColumn.ts"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** Replay options that do not decode, or that contradict each other. */
export class InvalidReplayOptions extends Schema.TaggedError<InvalidReplayOptions>()("InvalidReplayOptions", {
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid replay options: ${this.reason}`
  }
}

/** A column of the options that the CSV header lacks, has twice, or that cannot become a metric. */
export class ReplayColumnError extends Schema.TaggedError<ReplayColumnError>()("ReplayColumnError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.file}: ${this.reason}`
  }
}

/** A cell of the sensor id column that is not a non-negative integer. */
export class InvalidSensorId extends Schema.TaggedError<InvalidSensorId>()("InvalidSensorId", {
  file: Schema.String,
  line: Schema.Number,
  column: Schema.String,
  value: Schema.String
}) {
  override get message(): string {
    return (
      `${this.file}, line ${this.line}: invalid sensor id ${JSON.stringify(this.value)} in column ` +
      `${JSON.stringify(this.column)}: expected a non-negative integer`
    )
  }
}

/** A data row that cannot become a reading: a bad timestamp, sensor id or field count. */
export type InvalidRow = InvalidTimestamp | InvalidSensorId | CsvError

/**
 * The replay stopped at an invalid row or at a CSV syntax error. Every row before it was sent,
 * and its counts give how much was sent.
 */
export class ReplayStoppedAtInvalidRow extends Schema.TaggedError<ReplayStoppedAtInvalidRow>()("ReplayStoppedAtInvalidRow", {
  file: Schema.String,
  line: Schema.Number,
  /** The row's error, starting with the file and line. */
  detail: Schema.String,
  /**
   * Data rows before the invalid one that were not skipped as invalid. Each was sent, unless it
   * had no metric value.
   */
  rowsSent: Schema.Number,
  /** Invalid rows before this one that `skipInvalid` skipped. */
  rowsSkipped: Schema.Number,
  readingsSent: Schema.Number,
  messagesSent: Schema.Number,
  /** Whether `skipInvalid` could have skipped the row. A CSV syntax error cannot be skipped. */
  skippable: Schema.Boolean
}) {
  override get message(): string {
    const advice = this.skippable
      ? "Fix or remove the row and replay the rows after it, or pass --skip-invalid to skip invalid rows"
      : "Fix the file and replay the rows from this line on"
    const sent = `${countOf(this.rowsSent, "row")} before it ${this.rowsSent === 1 ? "was" : "were"} sent as ` +
      `${countOf(this.readingsSent, "reading")} in ${countOf(this.messagesSent, "message")}`
    const skipped = this.rowsSkipped === 0
      ? ""
      : `, and ${countOf(this.rowsSkipped, "invalid row")} ${this.rowsSkipped === 1 ? "was" : "were"} skipped`
    return `Replay stopped at an invalid row: ${this.detail}. ${sent}${skipped}. ${advice}`
  }
}

const countOf = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`

export type ReplayError =
  | InvalidReplayOptions
  | ReplayStoppedAtInvalidRow
  | InvalidTimeFormat
  | InvalidTimeZone
  | InvalidTimestamp
  | CsvError
  | ReplayColumnError
  | InvalidSensorId
  | PlatformError
  | KafkaError

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

const reservedFields = new Set(["ts", "sensor_id"])

/** A CSV column and the metric its values are sent as. */
export const ColumnMapping = Schema.Struct({
  column: Schema.NonEmptyString,
  metric: MetricName.pipe(
    Schema.filter((name) => !reservedFields.has(name) || "ts and sensor_id are fields of every reading, not metric names")
  )
})
export type ColumnMapping = typeof ColumnMapping.Type

/**
 * A column mapping written `CSV=metric` (`Temperature=temperature`), or `CSV` alone to keep the
 * column's name. The last `=` separates the two, because a metric name cannot contain one.
 */
export const ColumnMappingFromString = Schema.transformOrFail(Schema.String, ColumnMapping, {
  strict: true,
  decode: (text, _, ast) => {
    const separator = text.lastIndexOf("=")
    const column = separator === -1 ? text : text.slice(0, separator)
    const metric = separator === -1 ? text : text.slice(separator + 1)
    if (column === "") {
      return ParseResult.fail(
        new ParseResult.Type(ast, text, `invalid column mapping ${JSON.stringify(text)}: expected CSV=metric, such as Temperature=temperature`)
      )
    }
    return ParseResult.succeed({ column, metric })
  },
  encode: ({ column, metric }) => ParseResult.succeed(column === metric ? column : `${column}=${metric}`)
})

const PositiveInt = Schema.Int.pipe(Schema.positive())

/** Options of `replayCsv`; every field but `file` and one of `sensorId` and `sensorIdColumn` has a default. */
export const ReplayOptions = Schema.Struct({
  /** Path of the CSV file. */
  file: Schema.NonEmptyString,
  /** Columns to send and their metric names. When empty, every numeric column is sent under its own name. */
  columns: Schema.optionalWith(Schema.Array(ColumnMappingFromString), { exact: true, default: () => [] }),
  /** Name of the column that contains the timestamps. */
  timeColumn: Schema.optionalWith(Schema.NonEmptyString, { exact: true, default: () => "date" }),
  /** `iso`, `unix`, `unix-ms` or a strftime pattern (see `makeTimestampParser`). */
  timeFormat: Schema.optionalWith(Schema.NonEmptyString, { exact: true, default: () => "iso" }),
  /** Zone of timestamps without an offset: `UTC`, a fixed offset or an IANA name. */
  timeZone: Schema.optionalWith(Schema.NonEmptyString, { exact: true, default: () => "UTC" }),
  /** The sensor id of every reading of the file. */
  sensorId: Schema.optionalWith(SensorId, { exact: true }),
  /** Name of the column that contains each row's sensor id. */
  sensorIdColumn: Schema.optionalWith(Schema.NonEmptyString, { exact: true }),
  /** Maximum readings in one Kafka message. */
  perMessage: Schema.optionalWith(PositiveInt, { exact: true, default: () => 100 }),
  /** Kafka topic of the messages. */
  topic: Schema.optionalWith(
    Schema.String.pipe(
      Schema.pattern(/^[A-Za-z0-9._-]{1,249}$/, {
        message: () => "a Kafka topic name is 1 to 249 letters, digits, '.', '_' or '-'"
      })
    ),
    { default: () => readingsTopic }
  ),
  /** Maximum readings sent per second; unlimited when absent. */
  rate: Schema.optionalWith(Schema.Number.pipe(Schema.finite(), Schema.positive()), { exact: true }),
  /** Field separator of the CSV file, one character. */
  delimiter: Schema.optionalWith(Schema.String.pipe(Schema.length(1)), { exact: true, default: () => "," }),
  /**
   * Whether a row with a bad timestamp, sensor id or field count is logged and skipped. When
   * false, the replay sends the rows before it and fails with `ReplayStoppedAtInvalidRow`.
   */
  skipInvalid: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => false }),
  /** Maximum Kafka messages in one `send` call, which waits for the broker's acknowledgement. */
  messagesPerSend: Schema.optionalWith(PositiveInt, { exact: true, default: () => 50 })
})
export type ReplayOptions = typeof ReplayOptions.Type
/** The options as callers write them: column mappings as `CSV=metric` strings, defaults omitted. */
export type ReplayOptionsInput = typeof ReplayOptions.Encoded

const formatParseError = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => (issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`))
    .join("; ")

const decodeReplayOptions = (input: ReplayOptionsInput): Effect.Effect<ReplayOptions, InvalidReplayOptions> =>
  Effect.gen(function*() {
    const options = yield* Schema.decodeUnknown(ReplayOptions, { errors: "all" })(input).pipe(
      Effect.mapError((error) => new InvalidReplayOptions({ reason: formatParseError(error) }))
    )
    if ((options.sensorId === undefined) === (options.sensorIdColumn === undefined)) {
      return yield* new InvalidReplayOptions({
        reason: "give either a fixed sensor id (sensorId, --sensor-id) or the column that contains it (sensorIdColumn, --sensor-id-column), not both or neither"
      })
    }
    const metrics = options.columns.map((mapping) => mapping.metric)
    const repeated = metrics.filter((metric, index) => metrics.indexOf(metric) !== index)
    if (repeated.length > 0) {
      return yield* new InvalidReplayOptions({
        reason: `several columns map to the metric ${[...new Set(repeated)].join(", ")}; give each metric one column`
      })
    }
    return options
  })

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

interface MetricColumn {
  readonly index: number
  readonly column: string
  readonly metric: MetricName
}

/** Row indexes of the parts of a reading. */
interface ColumnPlan {
  readonly timeIndex: number
  /** A fixed sensor id, or the index of the column that contains it. */
  readonly sensor: { readonly _tag: "Fixed"; readonly id: SensorId } | { readonly _tag: "Column"; readonly index: number }
  readonly metrics: ReadonlyArray<MetricColumn>
}

/** Rows examined to find the numeric columns when no column mapping is given. */
const numericSampleRows = 1000

const numberPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

/** Parses a cell as a finite decimal number (`23.7`, `-1`, `1e-3`), or returns undefined. */
const parseMetricValue = (cell: string): number | undefined => {
  const text = cell.trim()
  if (!numberPattern.test(text)) return undefined
  const value = Number(text)
  return Number.isFinite(value) ? value : undefined
}

/** Cells that mean "no value" in common exports (R, pandas, SQL dumps), compared in lower case. */
const missingValueMarkers = new Set(["", "na", "n/a", "nan", "null", "none", "-"])

const isMissingValue = (cell: string) => missingValueMarkers.has(cell.trim().toLowerCase())

const listColumns = (header: CsvHeader) =>
  header.columns.filter((name) => name !== "").map((name) => JSON.stringify(name)).join(", ")

const findColumn = (file: string, header: CsvHeader, name: string, role: string) => {
  const indexes = header.columns.flatMap((column, index) => (column === name ? [index] : []))
  const [index] = indexes
  if (index === undefined) {
    return Either.left(
      new ReplayColumnError({
        file,
        reason: `the ${role} ${JSON.stringify(name)} is not in the header (line ${header.line}); the columns are ${listColumns(header)}`
      })
    )
  }
  if (indexes.length > 1) {
    return Either.left(
      new ReplayColumnError({
        file,
        reason: `the ${role} ${JSON.stringify(name)} appears ${indexes.length} times in the header (line ${header.line}); rename the duplicates`
      })
    )
  }
  return Either.right(index)
}

const isMetricName = Schema.is(ColumnMapping.fields.metric)

/**
 * Picks every column that looks numeric in `sample`, under its own name: a column whose
 * non-missing cells are all numbers, with at least one number. Rows whose field count differs
 * from the header's are left out, because their cells do not line up with the columns. The time,
 * sensor id and unnamed row index columns are never metrics. Fails when a numeric column's name
 * is not a valid metric name.
 */
const numericColumns = (
  file: string,
  header: CsvHeader,
  excluded: ReadonlySet<number>,
  sample: ReadonlyArray<CsvRecord>
): Effect.Effect<ReadonlyArray<MetricColumn>, ReplayColumnError> =>
  Effect.gen(function*() {
    const metrics: Array<MetricColumn> = []
    const invalidNames: Array<string> = []
    const textColumns: Array<string> = []
    const rows = sample.filter((row) => row.fields.length === header.columns.length)
    for (const [index, column] of header.columns.entries()) {
      if (column === "" || excluded.has(index)) continue
      const cells = rows.map((row) => row.fields[index] ?? "")
      const hasNumber = cells.some((cell) => parseMetricValue(cell) !== undefined)
      const allNumeric = cells.every((cell) => isMissingValue(cell) || parseMetricValue(cell) !== undefined)
      if (!hasNumber || !allNumeric) textColumns.push(column)
      else if (isMetricName(column)) metrics.push({ index, column, metric: column })
      else invalidNames.push(column)
    }
    if (invalidNames.length > 0) {
      return yield* new ReplayColumnError({
        file,
        reason: `the numeric columns ${invalidNames.map((name) => JSON.stringify(name)).join(", ")} are not valid metric names ` +
          `(letters, digits, '_', '.', '-', starting with a letter or '_', at most 63 characters, not ts or sensor_id); ` +
          `map each to a valid name with a column mapping such as "${invalidNames[0]}=${suggestMetricName(invalidNames[0] ?? "")}"`
      })
    }
    const misshapen = sample.length - rows.length
    const examined = misshapen === 0
      ? `the first ${countOf(sample.length, "row")}`
      : `the ${countOf(rows.length, "row")} with the header's field count among the first ${sample.length}`
    if (metrics.length === 0 && rows.length > 0) {
      return yield* new ReplayColumnError({
        file,
        reason: `no column other than the time and sensor id columns has only numbers in ${examined}; ` +
          `name the columns to send with column mappings`
      })
    }
    if (textColumns.length > 0) {
      yield* Effect.logInfo("Columns left out because they are not numeric").pipe(
        Effect.annotateLogs({ file, columns: textColumns.join(", "), sampleRows: rows.length })
      )
    }
    return metrics
  })

const suggestMetricName = (column: string): string => {
  const name = column.replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^([^A-Za-z_])/, "_$1").slice(0, 63)
  return reservedFields.has(name) ? `${name}_value` : name
}

const planColumns = (
  options: ReplayOptions,
  header: CsvHeader,
  sample: ReadonlyArray<CsvRecord>
): Effect.Effect<ColumnPlan, ReplayColumnError> =>
  Effect.gen(function*() {
    const file = options.file
    const timeIndex = yield* findColumn(file, header, options.timeColumn, "time column")
    // decodeReplayOptions ensures that exactly one of sensorId and sensorIdColumn is set.
    const sensor: ColumnPlan["sensor"] = options.sensorIdColumn !== undefined
      ? { _tag: "Column", index: yield* findColumn(file, header, options.sensorIdColumn, "sensor id column") }
      : { _tag: "Fixed", id: options.sensorId as SensorId }
    const excluded = new Set(sensor._tag === "Column" ? [timeIndex, sensor.index] : [timeIndex])

    if (options.columns.length === 0) {
      const metrics = yield* numericColumns(file, header, excluded, sample)
      return { timeIndex, sensor, metrics }
    }
    const metrics: Array<MetricColumn> = []
    for (const mapping of options.columns) {
      const index = yield* findColumn(file, header, mapping.column, "column")
      if (excluded.has(index)) {
        return yield* new ReplayColumnError({
          file,
          reason: `the column ${JSON.stringify(mapping.column)} is the time or sensor id column and cannot also be a metric`
        })
      }
      metrics.push({ index, column: mapping.column, metric: mapping.metric })
    }
    return { timeIndex, sensor, metrics }
  })

// ---------------------------------------------------------------------------------------------
// Rows to messages
// ---------------------------------------------------------------------------------------------

/** A Kafka message ready to send, with the count of readings in its JSON array. */
interface OutgoingMessage {
  readonly key: string
  readonly value: string
  readonly readings: number
}

/** Non-numeric cells logged one by one before the rest are only counted. */
const maxLoggedInvalidCells = 5

/** Skipped invalid rows logged one by one before the rest are only counted. */
const maxLoggedInvalidRows = 10

const sensorIdPattern = /^\d+$/

/**
 * Turns rows into readings in the original format and groups them into messages of at most
 * `perMessage` readings of one sensor, in file order. A metric cell that is empty or not a number
 * is left out of its reading and counted in `skippedCells`. A row without any metric value
 * gives no reading. An invalid row is counted in `invalidRows` when `skipInvalid` is set, and
 * otherwise sets `stoppedAt`, after which the builder takes no more rows.
 */
class MessageBuilder {
  rows = 0
  readings = 0
  skippedCells = 0
  invalidRows = 0
  firstTs: EpochMicros | null = null
  lastTs: EpochMicros | null = null
  /** The invalid row that stopped the replay, and the count of data rows before it. */
  stoppedAt: { readonly error: InvalidRow; readonly rowsBefore: number } | undefined = undefined
  private loggedInvalidCells = 0
  private readonly invalidCells: Array<{ line: number; column: string; value: string }> = []
  private readonly skippedRows: Array<InvalidRow> = []
  /** Line of the first invalid row past the logged ones, until the note about it is logged. */
  private firstUnloggedInvalidLine: number | undefined = undefined
  private readonly pending = new Map<SensorId, Array<Record<string, number>>>()

  constructor(
    private readonly options: ReplayOptions,
    private readonly header: CsvHeader,
    private readonly plan: ColumnPlan,
    private readonly parseTimestamp: ParseTimestamp
  ) {}

  /**
   * Adds one row and returns the message it completes, if any. Non-numeric cells and skipped
   * rows to log are queued, so this per-row step stays synchronous.
   */
  add(row: CsvRecord): OutgoingMessage | undefined {
    if (this.stoppedAt !== undefined) return undefined
    this.rows++
    const reading = this.readingOf(row)
    if (Either.isRight(reading)) return reading.right
    if (this.options.skipInvalid) {
      this.invalidRows++
      if (this.invalidRows <= maxLoggedInvalidRows) this.skippedRows.push(reading.left)
      else if (this.invalidRows === maxLoggedInvalidRows + 1) this.firstUnloggedInvalidLine = row.line
    } else {
      this.stoppedAt = { error: reading.left, rowsBefore: this.rows - 1 }
    }
    return undefined
  }

  private readingOf(row: CsvRecord): Either.Either<OutgoingMessage | undefined, InvalidRow> {
    const fieldCount = fieldCountError(this.options.file, this.header, row)
    if (fieldCount !== undefined) return Either.left(fieldCount)
    const micros = this.parseTimestamp(row.fields[this.plan.timeIndex] ?? "", row.line)
    if (Either.isLeft(micros)) return Either.left(micros.left)
    const sensorId = this.sensorIdOf(row)
    if (Either.isLeft(sensorId)) return Either.left(sensorId.left)

    // Unix seconds; the division gives a fraction only when the instant has sub-second digits.
    const reading: Record<string, number> = { ts: micros.right / 1_000_000, sensor_id: sensorId.right }
    let values = 0
    for (const metric of this.plan.metrics) {
      const cell = row.fields[metric.index] ?? ""
      const value = parseMetricValue(cell)
      if (value === undefined) {
        this.skippedCells++
        if (!isMissingValue(cell) && this.loggedInvalidCells < maxLoggedInvalidCells) {
          this.loggedInvalidCells++
          this.invalidCells.push({ line: row.line, column: metric.column, value: cell })
        }
        continue
      }
      reading[metric.metric] = value
      values++
    }
    if (values === 0) return Either.right(undefined)

    this.readings++
    this.firstTs ??= micros.right
    this.lastTs = micros.right
    const readings = this.pending.get(sensorId.right) ?? []
    readings.push(reading)
    if (readings.length < this.options.perMessage) {
      this.pending.set(sensorId.right, readings)
      return Either.right(undefined)
    }
    this.pending.delete(sensorId.right)
    return Either.right(toMessage(sensorId.right, readings))
  }

  /**
   * Logs the queued non-numeric cells and skipped rows, each with its line, and a note when the
   * first invalid row past the logged ones has arrived.
   */
  logQueued(): Effect.Effect<void> {
    const cells = this.invalidCells.splice(0)
    const rows = this.skippedRows.splice(0)
    const unloggedLine = this.firstUnloggedInvalidLine
    this.firstUnloggedInvalidLine = undefined
    const file = this.options.file
    const logCells = Effect.forEach(cells, (cell) =>
      Effect.logWarning("Cell is not a number; its metric is left out of the reading").pipe(
        Effect.annotateLogs({ file, ...cell })
      ), { discard: true })
    const logRows = Effect.forEach(rows, (error) =>
      Effect.logWarning("Invalid row skipped").pipe(
        Effect.annotateLogs({ file, line: error.line, error: describeInvalidRow(file, error) })
      ), { discard: true })
    const logUnlogged = unloggedLine === undefined ? Effect.void : Effect.logWarning(
      `More than ${maxLoggedInvalidRows} invalid rows; this and further invalid rows are skipped without a log line each, ` +
        "and the summary counts them"
    ).pipe(Effect.annotateLogs({ file, line: unloggedLine }))
    return Effect.zipRight(logCells, Effect.zipRight(logRows, logUnlogged))
  }

  /** Returns the incomplete messages left at the end of the file, one per sensor. */
  flush(): Array<OutgoingMessage> {
    const messages = [...this.pending].map(([sensorId, readings]) => toMessage(sensorId, readings))
    this.pending.clear()
    return messages
  }

  private sensorIdOf(row: CsvRecord): Either.Either<SensorId, InvalidSensorId> {
    const sensor = this.plan.sensor
    if (sensor._tag === "Fixed") return Either.right(sensor.id)
    const cell = (row.fields[sensor.index] ?? "").trim()
    const id = Number(cell)
    if (sensorIdPattern.test(cell) && Number.isSafeInteger(id)) return Either.right(SensorId.make(id))
    return Either.left(
      new InvalidSensorId({
        file: this.options.file,
        line: row.line,
        column: this.header.columns[sensor.index] ?? "",
        value: row.fields[sensor.index] ?? ""
      })
    )
  }
}

/** The message of an invalid row, starting with the file and line as the CSV errors do. */
const describeInvalidRow = (file: string, error: InvalidRow): string =>
  error._tag === "InvalidTimestamp" ? `${file}, ${error.message}` : error.message

/** Serializes readings compactly: `[{"ts":1646409307,"sensor_id":1,...}]`, equal as JSON to the devices' spaced form. */
const toMessage = (sensorId: SensorId, readings: ReadonlyArray<Record<string, number>>): OutgoingMessage => ({
  key: String(sensorId),
  value: JSON.stringify(readings),
  readings: readings.length
})

// ---------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------

/** Counts of a finished replay. `firstTs` and `lastTs` are the first and last reading in file order, or null when none was sent. */
export interface ReplaySummary {
  /** Data rows read from the file. */
  readonly rows: number
  /** Readings sent; lower than `rows` when some rows had no metric value. */
  readonly readings: number
  /** Kafka messages sent. */
  readonly messages: number
  /** Metric cells left out because they were empty or not a number. */
  readonly skippedCells: number
  /** Rows skipped because their timestamp, sensor id or field count was invalid (with `skipInvalid`). */
  readonly invalidRows: number
  readonly firstTs: EpochMicros | null
  readonly lastTs: EpochMicros | null
  /** Wall-clock duration of the replay, in seconds. */
  readonly seconds: number
}

/** Interval between progress logs, in milliseconds. */
const progressIntervalMillis = 5_000

/**
 * Reads a CSV file and sends its rows to Kafka as readings in the original format. Each message
 * is a JSON array of up to `perMessage` `{"ts", "sensor_id", <metric>: <number>}` objects of one
 * sensor. Its key is the sensor id, so a sensor's readings keep their order within a partition.
 * Messages go out `messagesPerSend` at a time, each call waiting for the broker's acknowledgement.
 *
 * An invalid row has a bad timestamp, sensor id or field count. With `skipInvalid`, each one is
 * skipped and counted in `invalidRows`, and the first ten are logged. Without it, the replay
 * sends every reading of the rows before the first invalid row and then fails with
 * `ReplayStoppedAtInvalidRow`. A CSV syntax error, such as an unclosed quote, always stops the
 * replay that way, because the rows after it cannot be found. With `rate`, each send waits until the readings sent
 * before it, at `rate` per second, fill the time since the start. The average thus stays at or
 * below `rate`, but each send goes out as one burst of about one second of readings or one message.
 */
export const replayCsv = Effect.fn("Replay.replayCsv")(function*(
  input: ReplayOptionsInput
): Effect.fn.Return<ReplaySummary, ReplayError, KafkaProducer | FileSystem.FileSystem> {
  const options = yield* decodeReplayOptions(input)
  const zone = yield* parseTimeZone(options.timeZone)
  const parseTimestamp = yield* makeTimestampParser(options.timeFormat, zone)
  const producer = yield* KafkaProducer
  const startMillis = yield* Clock.currentTimeMillis

  const { builder, messagesSent, syntaxError } = yield* Effect.scoped(
    Effect.gen(function*() {
      // MessageBuilder checks each row's field count, so that a misshapen row can be skipped.
      const table = yield* readCsvFile(options.file, { delimiter: options.delimiter, checkFieldCount: false })
      // A syntax error ends the rows there, so that the rows before it are still sent.
      let syntaxError: CsvError | undefined
      const rows = table.rows.pipe(
        Stream.catchTag("CsvError", (error) => Stream.execute(Effect.sync(() => void (syntaxError = error))))
      )
      const [sample, rest] = yield* splitStream(rows, numericSampleRows)
      const plan = yield* planColumns(options, table.header, Chunk.toReadonlyArray(sample))
      yield* Effect.logInfo("Replay started").pipe(
        Effect.annotateLogs({
          file: options.file,
          topic: options.topic,
          metrics: plan.metrics.map((metric) => `${metric.column}=${metric.metric}`).join(", "),
          timeColumn: options.timeColumn,
          timeFormat: options.timeFormat,
          timeZone: zone.name
        })
      )

      const builder = new MessageBuilder(options, table.header, plan, parseTimestamp)
      // The readings of the rows before an invalid row are flushed and sent before the replay stops.
      const messages = Stream.concat(Stream.fromChunk(sample), rest).pipe(
        Stream.takeWhile(() => builder.stoppedAt === undefined),
        Stream.mapChunksEffect((chunk) =>
          Effect.gen(function*() {
            const out: Array<OutgoingMessage> = []
            for (const row of chunk) {
              const message = builder.add(row)
              if (message !== undefined) out.push(message)
            }
            yield* builder.logQueued()
            return Chunk.unsafeFromArray(out)
          })
        ),
        Stream.concat(Stream.suspend(() => Stream.fromIterable(builder.flush())))
      )

      // With a rate limit, one send carries about one second of readings, so the pace stays even.
      const sendSize = options.rate === undefined
        ? options.messagesPerSend
        : Math.min(options.messagesPerSend, Math.max(1, Math.floor(options.rate / options.perMessage)))
      const sent = { messages: 0, readings: 0, lastLogMillis: startMillis }

      const sendGroup = (group: Chunk.Chunk<OutgoingMessage>) =>
        Effect.gen(function*() {
          if (options.rate !== undefined) {
            const dueMillis = startMillis + (sent.readings / options.rate) * 1000
            const now = yield* Clock.currentTimeMillis
            if (dueMillis > now) yield* Effect.sleep(Duration.millis(dueMillis - now))
          }
          const records: Array<Message> = Chunk.toArray(group).map(({ key, value }) => ({ key, value }))
          // One trace per send, so a long replay does not grow a single trace.
          yield* producer.send(options.topic, records).pipe(
            Effect.withSpan("Replay.send", { root: true, attributes: { file: options.file, messages: records.length } })
          )
          sent.messages += records.length
          sent.readings += Chunk.reduce(group, 0, (total, message) => total + message.readings)

          const now = yield* Clock.currentTimeMillis
          if (now - sent.lastLogMillis >= progressIntervalMillis) {
            sent.lastLogMillis = now
            yield* Effect.logInfo("Replay progress").pipe(
              Effect.annotateLogs({
                file: options.file,
                rows: builder.rows,
                readingsSent: sent.readings,
                messagesSent: sent.messages,
                skippedCells: builder.skippedCells,
                invalidRows: builder.invalidRows,
                readingsPerSecond: Math.round(sent.readings / ((now - startMillis) / 1000))
              })
            )
          }
        })

      yield* messages.pipe(Stream.grouped(sendSize), Stream.runForEach(sendGroup))
      return { builder, messagesSent: sent.messages, syntaxError }
    })
  )

  const stop = builder.stoppedAt ?? (syntaxError === undefined ? undefined : { error: syntaxError, rowsBefore: builder.rows })
  if (stop !== undefined) {
    return yield* new ReplayStoppedAtInvalidRow({
      file: options.file,
      line: stop.error.line,
      detail: describeInvalidRow(options.file, stop.error),
      rowsSent: stop.rowsBefore - builder.invalidRows,
      rowsSkipped: builder.invalidRows,
      readingsSent: builder.readings,
      messagesSent,
      skippable: stop.error !== syntaxError
    })
  }

  const endMillis = yield* Clock.currentTimeMillis
  const summary: ReplaySummary = {
    rows: builder.rows,
    readings: builder.readings,
    messages: messagesSent,
    skippedCells: builder.skippedCells,
    invalidRows: builder.invalidRows,
    firstTs: builder.firstTs,
    lastTs: builder.lastTs,
    seconds: (endMillis - startMillis) / 1000
  }
  yield* Effect.logInfo("Replay finished").pipe(
    Effect.annotateLogs({
      file: options.file,
      topic: options.topic,
      ...summary,
      firstTs: summary.firstTs === null ? "none" : formatEpochMicros(summary.firstTs),
      lastTs: summary.lastTs === null ? "none" : formatEpochMicros(summary.lastTs)
    })
  )
  return summary
})
