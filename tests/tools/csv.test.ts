import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type CsvOptions, parseCsvRecords, readCsv, readCsvFile } from "../../src/tools/replay/Csv.ts"

const records = (chunks: ReadonlyArray<string>, options?: CsvOptions) =>
  Stream.fromIterable(chunks).pipe(parseCsvRecords(options), Stream.runCollect, Effect.map(Chunk.toArray))

const recordError = (chunks: ReadonlyArray<string>, options?: CsvOptions) =>
  Stream.fromIterable(chunks).pipe(parseCsvRecords(options), Stream.runDrain, Effect.flip)

/** Reads a table and collects its rows, within one scope. */
const table = (chunks: ReadonlyArray<string>, options?: CsvOptions) =>
  Effect.scoped(
    Effect.gen(function*() {
      const { header, rows } = yield* readCsv(options)(Stream.fromIterable(chunks))
      const collected = yield* Stream.runCollect(rows)
      return { header, rows: Chunk.toArray(collected) }
    })
  )

/** Reads a table until it fails; returns the error and the lines of the rows read before it. */
const tableError = (chunks: ReadonlyArray<string>, options?: CsvOptions) =>
  Effect.scoped(
    Effect.gen(function*() {
      const linesBefore: Array<number> = []
      const result = yield* Effect.either(
        Effect.gen(function*() {
          const { rows } = yield* readCsv(options)(Stream.fromIterable(chunks))
          yield* Stream.runForEach(rows, (row) => Effect.sync(() => linesBefore.push(row.line)))
        })
      )
      if (Either.isRight(result)) return yield* Effect.dieMessage("expected the CSV input to be rejected")
      return { error: result.left, linesBefore }
    })
  )

describe("parseCsvRecords", () => {
  it.effect("splits unquoted fields", () =>
    Effect.gen(function*() {
      const result = yield* records(["a,b,c\n1,2,3\n"])
      expect(result).toEqual([
        { line: 1, fields: ["a", "b", "c"] },
        { line: 2, fields: ["1", "2", "3"] }
      ])
    }))

  it.effect("unquotes delimiters, line breaks and doubled quotes", () =>
    Effect.gen(function*() {
      const result = yield* records(['"x,y","line 1\nline 2","say ""hi""",""\n'])
      expect(result).toEqual([{ line: 1, fields: ["x,y", "line 1\nline 2", 'say "hi"', ""] }])
    }))

  it.effect("accepts CRLF, LF and lone CR", () =>
    Effect.gen(function*() {
      const result = yield* records(["a,b\r\n1,2\n3,4\r5,6"])
      expect(result.map((record) => record.fields)).toEqual([["a", "b"], ["1", "2"], ["3", "4"], ["5", "6"]])
      expect(result.map((record) => record.line)).toEqual([1, 2, 3, 4])
    }))

  it.effect("keeps empty fields at both ends", () =>
    Effect.gen(function*() {
      const result = yield* records([",a,\n,,\n"])
      expect(result.map((record) => record.fields)).toEqual([["", "a", ""], ["", "", ""]])
    }))

  it.effect("skips empty lines but counts them", () =>
    Effect.gen(function*() {
      const result = yield* records(["\na,b\r\n\r\n\n1,2\n\n"])
      expect(result).toEqual([
        { line: 2, fields: ["a", "b"] },
        { line: 5, fields: ["1", "2"] }
      ])
    }))

  it.effect("numbers records by their first line", () =>
    Effect.gen(function*() {
      const result = yield* records(['a,"multi\r\nline\r\nvalue"\r\nb,c\r\n'])
      expect(result.map((record) => record.line)).toEqual([1, 4])
    }))

  it.effect("gives the same records for every chunk split", () =>
    Effect.gen(function*() {
      const text = 'id,"note, with ""quotes"""\r\n1,"two\r\nlines"\r\n\r\n2,plain\r3,"x"\n'
      const expected = yield* records([text])
      expect(expected).toHaveLength(4)
      for (let split = 0; split <= text.length; split++) {
        const result = yield* records([text.slice(0, split), text.slice(split)])
        expect(result, `split at ${split}`).toEqual(expected)
      }
      const oneCharacterChunks = yield* records([...text])
      expect(oneCharacterChunks).toEqual(expected)
    }))

  it.effect("reads the last record without a final line break", () =>
    Effect.gen(function*() {
      const result = yield* records(['a,b\n1,"2"'])
      expect(result).toEqual([
        { line: 1, fields: ["a", "b"] },
        { line: 2, fields: ["1", "2"] }
      ])
    }))

  it.effect("uses a configured delimiter", () =>
    Effect.gen(function*() {
      const semicolon = yield* records(['a;"b;c";d,e\n'], { delimiter: ";" })
      expect(semicolon[0]?.fields).toEqual(["a", "b;c", "d,e"])
      const tab = yield* records(["a\tb\t\n"], { delimiter: "\t" })
      expect(tab[0]?.fields).toEqual(["a", "b", ""])
    }))

  it.effect("drops a byte order mark", () =>
    Effect.gen(function*() {
      const result = yield* records(["\uFEFFdate,value\n"])
      expect(result[0]?.fields).toEqual(["date", "value"])
    }))

  it.effect("keeps a quote inside an unquoted field", () =>
    Effect.gen(function*() {
      const result = yield* records(['5" screen,ok\n'])
      expect(result[0]?.fields).toEqual(['5" screen', "ok"])
    }))

  it.effect("rejects an unterminated quoted field", () =>
    Effect.gen(function*() {
      const error = yield* recordError(['a,b\n1,"open\n2,3\n'], { source: "data.csv" })
      expect(error.line).toBe(2)
      expect(error.message).toBe("data.csv, line 2: the quoted field that starts on this line has no closing quote")
    }))

  it.effect("rejects text after a closing quote", () =>
    Effect.gen(function*() {
      const error = yield* recordError(['a,b\n1,2\n"x"y,3\n'], { source: "data.csv" })
      expect(error.line).toBe(3)
      expect(error.message).toContain('unexpected character "y" after the closing quote')
      expect(error.message).toContain('write a quote inside a quoted field twice ("")')
    }))

  it.effect("rejects an invalid delimiter", () =>
    Effect.gen(function*() {
      const long = yield* recordError(["a\n"], { delimiter: ";;" })
      expect(long.message).toBe('CSV input: invalid delimiter ";;": expected exactly one character')
      const quote = yield* recordError(["a\n"], { delimiter: '"' })
      expect(quote.message).toContain("a quote or a line break cannot separate fields")
    }))
})

describe("readCsv", () => {
  it.effect("returns the header and the rows", () =>
    Effect.gen(function*() {
      const result = yield* table(["date,temperature\n2022-03-04,20.5\n2022-03-05,21\n"])
      expect(result.header).toEqual({ line: 1, columns: ["date", "temperature"], rowIndex: false })
      expect(result.rows).toEqual([
        { line: 2, fields: ["2022-03-04", "20.5"] },
        { line: 3, fields: ["2022-03-05", "21"] }
      ])
    }))

  it.effect("names an unnamed row index column \"\"", () =>
    Effect.gen(function*() {
      const result = yield* table(['"date","Temperature"\r\n"140","2015-02-02 14:19:00",23.7\r\n"141","2015-02-02 14:19:59",23.718\r\n'])
      expect(result.header).toEqual({ line: 1, columns: ["", "date", "Temperature"], rowIndex: true })
      expect(result.rows.map((row) => row.fields)).toEqual([
        ["140", "2015-02-02 14:19:00", "23.7"],
        ["141", "2015-02-02 14:19:59", "23.718"]
      ])
    }))

  it.effect("rejects a row with too many fields", () =>
    Effect.gen(function*() {
      const { error, linesBefore } = yield* tableError(["a,b\n1,2\n3,4\n5,6,7\n8,9\n"], { source: "data.csv" })
      expect(linesBefore).toEqual([2, 3])
      expect(error.line).toBe(4)
      expect(error.message).toBe(
        "data.csv, line 4: the row has 3 fields, expected 2 fields, one for each column of the header (line 1)"
      )
    }))

  it.effect("rejects a short row after a row index", () =>
    Effect.gen(function*() {
      const { error, linesBefore } = yield* tableError(['a,b\n"1",x,y\n"2",x\n'], { source: "data.csv" })
      expect(linesBefore).toEqual([2])
      expect(error.line).toBe(3)
      expect(error.message).toContain("the row has 2 fields, expected 3 fields, an unnamed row index")
    }))

  it.effect("rejects a row that lacks the first row's index", () =>
    Effect.gen(function*() {
      const { error } = yield* tableError(["a,b\n1,x,y\nx,y\n"])
      expect(error.line).toBe(3)
    }))

  it.effect("rejects a first row with an extra field", () =>
    Effect.gen(function*() {
      const { error, linesBefore } = yield* tableError(["a,b\n1,2,x\n3,4\n5,6\n"], { source: "data.csv" })
      expect(linesBefore).toEqual([])
      expect(error.message).toBe(
        "data.csv, line 2: the row has 3 fields, expected 2 fields, one for each column of the header (line 1)"
      )
    }))

  it.effect("keeps a row index past a short row", () =>
    Effect.gen(function*() {
      const result = yield* table(["a,b\n1,x,y\n2,x,y\n3,x\n"], { checkFieldCount: false })
      expect(result.header).toEqual({ line: 1, columns: ["", "a", "b"], rowIndex: true })
    }))

  it.effect("reports the line of a row after multi-line fields", () =>
    Effect.gen(function*() {
      const { error } = yield* tableError(['a,b\n"one\ntwo",1\nonly\n'])
      expect(error.line).toBe(4)
    }))

  it.effect("accepts a header without rows", () =>
    Effect.gen(function*() {
      const result = yield* table(["a,b\n"])
      expect(result.header).toEqual({ line: 1, columns: ["a", "b"], rowIndex: false })
      expect(result.rows).toEqual([])
    }))

  it.effect("rejects empty input", () =>
    Effect.gen(function*() {
      const { error } = yield* tableError(["\n\n"], { source: "empty.csv" })
      expect(error.message).toBe("empty.csv: the input is empty; expected a header row")
    }))
})

describe("readCsvFile", () => {
  it.effect("streams a large file in chunks", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(join(tmpdir(), "csv-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const path = join(directory, "large.csv")
      const rowCount = 50_000
      const lines = ["\uFEFFid,\"label\",value"]
      for (let index = 0; index < rowCount; index++) lines.push(`${index},"row ""${index}""\r\nend",${index * 0.5}`)
      writeFileSync(path, lines.join("\r\n") + "\r\n")

      const { header, rows } = yield* readCsvFile(path)
      expect(header.columns).toEqual(["id", "label", "value"])
      const collected = Chunk.toArray(yield* Stream.runCollect(rows))
      expect(collected).toHaveLength(rowCount)
      expect(collected[12_345]).toEqual({ line: 2 + 12_345 * 2, fields: ["12345", 'row "12345"\r\nend', "6172.5"] })
      expect(collected.at(-1)?.fields[0]).toBe(String(rowCount - 1))
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))

  it.effect("names the file in errors", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(join(tmpdir(), "csv-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      const path = join(directory, "bad.csv")
      writeFileSync(path, "a,b\n1\n")
      const { rows } = yield* readCsvFile(path)
      const error = yield* Effect.flip(Stream.runDrain(rows))
      expect(error._tag).toBe("CsvError")
      expect(error.message).toContain(`${path}, line 2: the row has 1 fields`)
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer)))
})
