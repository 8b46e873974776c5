import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Chunk, Effect, Either, Option, type Scope, Schema, Stream } from "effect"

/** A CSV input that cannot be read as a table. `line` is 1-based, and 0 when no line is at fault. */
export class CsvError extends Schema.TaggedError<CsvError>()("CsvError", {
  source: Schema.String,
  line: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return this.line === 0 ? `${this.source}: ${this.reason}` : `${this.source}, line ${this.line}: ${this.reason}`
  }
}

export interface CsvOptions {
  /** Field separator, one character other than `"`, CR and LF. Default `,`. */
  readonly delimiter?: string
  /** Name of the input in error messages, usually its path. Default `CSV input`. */
  readonly source?: string
  /**
   * Whether a data row with another field count than the header fails the row stream. Default
   * true. A caller that skips such rows passes false and checks each row with `fieldCountError`.
   */
  readonly checkFieldCount?: boolean
}

/** One record of the input: its fields, unquoted, and the line on which it starts. */
export interface CsvRecord {
  readonly line: number
  readonly fields: ReadonlyArray<string>
}

/** The header row, as the rows' fields are indexed. */
export interface CsvHeader {
  /** Line of the header row (1 unless blank lines precede it). */
  readonly line: number
  /**
   * Column names, one per field of every row. When the rows have one field more than the header
   * row, the first column is an unnamed row index (as R's `write.csv` writes it) and is named "".
   */
  readonly columns: ReadonlyArray<string>
  /** Whether `columns[0]` is the unnamed row index that the header row lacks. */
  readonly rowIndex: boolean
}

/** A CSV input split into its header and a stream of data rows, valid within the scope that read it. */
export interface CsvTable<E> {
  readonly header: CsvHeader
  /**
   * Data rows, each with exactly `header.columns.length` fields. A row with another count fails
   * the stream, unless `checkFieldCount` is false.
   */
  readonly rows: Stream.Stream<CsvRecord, CsvError | E>
}

const quote = 0x22
const carriageReturn = 0x0d
const lineFeed = 0x0a
const byteOrderMark = 0xfeff

const FieldStart = 0
const Unquoted = 1
const Quoted = 2
/** A quote was read inside a quoted field: it closes the field, or doubles a literal quote. */
const QuoteInQuoted = 3

/**
 * An incremental RFC 4180 tokenizer: text goes in by chunks of any size, complete records come out.
 * Fields may be quoted with `"`, and a quoted field may contain the delimiter, line breaks, and
 * quotes written twice. Records end at CRLF, LF or a lone CR. Empty lines are skipped. A quote
 * inside an unquoted field is kept as a literal character, as Python's `csv` module does.
 */
class CsvTokenizer {
  private state = FieldStart
  private field = ""
  private fields: Array<string> = []
  /** Physical line of the next character: CRLF, LF and a lone CR each end one line. */
  private line = 1
  private previousWasCarriageReturn = false
  private recordLine = 1
  private quoteLine = 0
  private started = false

  constructor(private readonly delimiter: number, private readonly source: string) {}

  /** Tokenizes `text` and appends the records it completes to `out`. Returns the first syntax error, if any. */
  push(text: string, out: Array<CsvRecord>): CsvError | undefined {
    let index = 0
    if (!this.started && text.length > 0) {
      this.started = true
      if (text.charCodeAt(0) === byteOrderMark) index = 1
    }
    let sliceStart = index
    for (; index < text.length; index++) {
      const code = text.charCodeAt(index)
      const isNewline = code === lineFeed || code === carriageReturn
      if (code === lineFeed) {
        if (!this.previousWasCarriageReturn) this.line++
        this.previousWasCarriageReturn = false
      } else {
        if (code === carriageReturn) this.line++
        this.previousWasCarriageReturn = code === carriageReturn
      }

      switch (this.state) {
        case FieldStart: {
          if (isNewline) {
            // A newline right after a record's end is an empty line, or the LF of a CRLF.
            if (this.fields.length > 0) this.endRecord("", out)
            break
          }
          if (this.fields.length === 0) this.recordLine = this.line
          if (code === this.delimiter) {
            this.fields.push("")
          } else if (code === quote) {
            this.state = Quoted
            this.quoteLine = this.line
            sliceStart = index + 1
          } else {
            this.state = Unquoted
            sliceStart = index
          }
          break
        }
        case Unquoted: {
          if (code === this.delimiter) {
            this.fields.push(this.field + text.slice(sliceStart, index))
            this.field = ""
            this.state = FieldStart
          } else if (isNewline) {
            this.endRecord(this.field + text.slice(sliceStart, index), out)
          }
          break
        }
        case Quoted: {
          if (code === quote) {
            this.field += text.slice(sliceStart, index)
            this.state = QuoteInQuoted
          }
          break
        }
        case QuoteInQuoted: {
          if (code === quote) {
            this.field += '"'
            this.state = Quoted
            sliceStart = index + 1
          } else if (code === this.delimiter) {
            this.fields.push(this.field)
            this.field = ""
            this.state = FieldStart
          } else if (isNewline) {
            this.endRecord(this.field, out)
          } else {
            return new CsvError({
              source: this.source,
              line: this.line,
              reason: `unexpected character ${JSON.stringify(text[index])} after the closing quote of a quoted field; ` +
                `write a quote inside a quoted field twice ("")`
            })
          }
          break
        }
      }
    }
    if (this.state === Unquoted || this.state === Quoted) this.field += text.slice(sliceStart)
    return undefined
  }

  /** Completes the last record at the end of the input. Returns an error when a quoted field is still open. */
  end(out: Array<CsvRecord>): CsvError | undefined {
    if (this.state === Quoted) {
      return new CsvError({
        source: this.source,
        line: this.quoteLine,
        reason: "the quoted field that starts on this line has no closing quote"
      })
    }
    if (this.state !== FieldStart || this.fields.length > 0) this.endRecord(this.field, out)
    return undefined
  }

  private endRecord(lastField: string, out: Array<CsvRecord>): void {
    this.fields.push(lastField)
    out.push({ line: this.recordLine, fields: this.fields })
    this.fields = []
    this.field = ""
    this.state = FieldStart
  }
}

/**
 * Applies `process` to each chunk of a stream. When it reports an error, the elements it produced
 * before the error are still emitted, then the stream fails.
 */
const mapChunksUntilError = <A, B, E2>(
  process: (chunk: Chunk.Chunk<A>, out: Array<B>) => E2 | undefined
) =>
<E, R>(stream: Stream.Stream<A, E, R>): Stream.Stream<B, E | E2, R> =>
  Stream.chunks(stream).pipe(
    Stream.flatMap((chunk) => {
      const out: Array<B> = []
      const error = process(chunk, out)
      const emitted = Stream.fromChunk(Chunk.unsafeFromArray(out))
      return error === undefined ? emitted : Stream.concat(emitted, Stream.fail(error))
    })
  )

/**
 * Reads at least `count` elements of `stream` (fewer when it ends first) and returns the first
 * `count` with a stream of the rest, which is valid within the scope. It replaces `Stream.peel`,
 * which in effect 3.22 runs the stream in a forked fiber and turns a failure after the first
 * elements into a `ChannelException` defect, so that `Stream.catchTag` cannot catch the error.
 */
export const splitStream = <A, E, R>(
  stream: Stream.Stream<A, E, R>,
  count: number
): Effect.Effect<readonly [Chunk.Chunk<A>, Stream.Stream<A, E>], E, R | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const pull = Effect.provide(yield* Stream.toPull(stream), context)
    let first = Chunk.empty<A>()
    while (Chunk.size(first) < count) {
      const chunk = yield* Effect.catchAll(pull, (error) =>
        Option.match(error, { onNone: () => Effect.succeed(undefined), onSome: (cause) => Effect.fail(cause) }))
      if (chunk === undefined) return [first, Stream.empty] as const
      first = Chunk.appendAll(first, chunk)
    }
    const rest = Stream.concat(Stream.fromChunk(Chunk.drop(first, count)), Stream.repeatEffectChunkOption(pull))
    return [Chunk.take(first, count), rest] as const
  })

const sourceName = (options: CsvOptions) => options.source ?? "CSV input"

/** Returns the delimiter's character code, or why it cannot be a delimiter. */
const delimiterCode = (options: CsvOptions): number | string => {
  const delimiter = options.delimiter ?? ","
  if (delimiter.length !== 1) return `invalid delimiter ${JSON.stringify(delimiter)}: expected exactly one character`
  const code = delimiter.charCodeAt(0)
  if (code === quote || code === carriageReturn || code === lineFeed) {
    return `invalid delimiter ${JSON.stringify(delimiter)}: a quote or a line break cannot separate fields`
  }
  return code
}

/** Splits a stream of text into CSV records, without header semantics. */
export const parseCsvRecords = (options: CsvOptions = {}) =>
<E, R>(text: Stream.Stream<string, E, R>): Stream.Stream<CsvRecord, CsvError | E, R> =>
  Stream.suspend(() => {
    const source = sourceName(options)
    const delimiter = delimiterCode(options)
    if (typeof delimiter === "string") return Stream.fail(new CsvError({ source, line: 0, reason: delimiter }))
    const tokenizer = new CsvTokenizer(delimiter, source)
    const records = text.pipe(
      mapChunksUntilError((chunk: Chunk.Chunk<string>, out: Array<CsvRecord>) => {
        for (const piece of chunk) {
          const error = tokenizer.push(piece, out)
          if (error !== undefined) return error
        }
        return undefined
      })
    )
    const last = Stream.suspend(() => {
      const out: Array<CsvRecord> = []
      const error = tokenizer.end(out)
      return error === undefined ? Stream.fromIterable(out) : Stream.fail(error)
    })
    return Stream.concat(records, last)
  })

/** Data rows that `readCsv` examines to decide whether the rows start with an unnamed row index. */
const rowIndexSampleRows = 10

/**
 * Reads the header row of a CSV text stream and returns it with the stream of data rows. The rows
 * start with an unnamed row index when the first data row has exactly one field more than the
 * header row. The exception is when more of the first 10 data rows have the header's field count
 * than that count plus one, because then the first row is the misshapen one. With a row index,
 * every row must have the first row's count.
 */
export const readCsv = (options: CsvOptions = {}) =>
<E, R>(text: Stream.Stream<string, E, R>): Effect.Effect<CsvTable<E>, CsvError | E, R | Scope.Scope> =>
  Effect.gen(function*() {
    const source = sourceName(options)
    // A syntax error becomes the last element, so that the rows before it reach the caller
    // even when it lies among the rows examined for the row index.
    const records = parseCsvRecords(options)(text).pipe(
      Stream.map((record) => Either.right(record) as Either.Either<CsvRecord, CsvError>),
      Stream.catchAll((error) =>
        error instanceof CsvError ? Stream.make(Either.left(error) as Either.Either<CsvRecord, CsvError>) : Stream.fail(error as E)
      )
    )
    const [first, rest] = yield* splitStream(records, 1 + rowIndexSampleRows)
    const headerRecord = Chunk.get(first, 0)
    if (headerRecord._tag === "None") {
      return yield* new CsvError({ source, line: 0, reason: "the input is empty; expected a header row" })
    }
    if (Either.isLeft(headerRecord.value)) return yield* headerRecord.value.left
    const headerLine = headerRecord.value.right.line
    const named = headerRecord.value.right.fields
    const sampleCounts = Chunk.toReadonlyArray(Chunk.drop(first, 1)).flatMap((record) =>
      Either.isRight(record) ? [record.right.fields.length] : []
    )
    const withIndex = sampleCounts.filter((count) => count === named.length + 1).length
    const withoutIndex = sampleCounts.filter((count) => count === named.length).length
    const rowIndex = sampleCounts[0] === named.length + 1 && withIndex >= withoutIndex
    const header: CsvHeader = { line: headerLine, columns: rowIndex ? ["", ...named] : named, rowIndex }
    const checkFieldCount = options.checkFieldCount ?? true
    const rows = Stream.concat(Stream.fromChunk(Chunk.drop(first, 1)), rest).pipe(
      mapChunksUntilError((chunk: Chunk.Chunk<Either.Either<CsvRecord, CsvError>>, out: Array<CsvRecord>) => {
        for (const record of chunk) {
          if (Either.isLeft(record)) return record.left
          const row = record.right
          const error = checkFieldCount ? fieldCountError(source, header, row) : undefined
          if (error !== undefined) return error
          out.push(row)
        }
        return undefined
      })
    )
    return { header, rows }
  })

/** Returns the error of a data row whose field count differs from the header's, or undefined. */
export const fieldCountError = (source: string, header: CsvHeader, row: CsvRecord): CsvError | undefined => {
  const expected = header.columns.length
  if (row.fields.length === expected) return undefined
  const named = header.rowIndex ? expected - 1 : expected
  const expectation = header.rowIndex
    ? `${expected} fields, an unnamed row index and the ${named} columns of the header (line ${header.line}), as the first data row has`
    : `${expected} fields, one for each column of the header (line ${header.line})`
  return new CsvError({ source, line: row.line, reason: `the row has ${row.fields.length} fields, expected ${expectation}` })
}

/**
 * Opens a UTF-8 CSV file and reads its header (see `readCsv`). The file is streamed in chunks
 * of 64 KiB, so memory use does not grow with its size. A UTF-8 byte order mark is dropped.
 */
export const readCsvFile = (
  path: string,
  options: Omit<CsvOptions, "source"> = {}
): Effect.Effect<CsvTable<PlatformError>, CsvError | PlatformError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const bytes = fs.stream(path, { chunkSize: FileSystem.KiB(64) })
    return yield* readCsv({ ...options, source: path })(Stream.decodeText(bytes))
  })
