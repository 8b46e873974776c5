import { Buffer } from "node:buffer"
import { describe, expect, it } from "vitest"
import { guardCopyFromStdin, hasCopyFromStdin } from "../../../src/runtime/database/CopyFromStdin.ts"
import { encodeQuery } from "../../../src/runtime/database/PostgresProtocol.ts"

const parseMessage = (name: string, sql: string, parameterTypes: ReadonlyArray<number> = []): Buffer => {
  const types = Buffer.alloc(2 + 4 * parameterTypes.length)
  types.writeInt16BE(parameterTypes.length, 0)
  parameterTypes.forEach((oid, index) => types.writeInt32BE(oid, 2 + 4 * index))
  const body = Buffer.concat([Buffer.from(`${name}\0${sql}\0`), types])
  const message = Buffer.alloc(5 + body.length)
  message.write("P", 0, "latin1")
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return message
}

describe("hasCopyFromStdin", () => {
  const cases: ReadonlyArray<readonly [string, boolean]> = [
    ["copy t from stdin", true],
    ["COPY t (a, b) FROM STDIN WITH (FORMAT csv)", true],
    ["copy \"odd name\" from stdin", true],
    ["select 1; copy t from stdin", true],
    ["/* load */ copy t from\n  stdin", true],
    ["copy t to stdout", false],
    ["copy t from '/dev/blob'", false],
    ["insert into t values ('copy t from stdin')", false],
    ["-- copy t from stdin\nselect 1", false],
    ["select $$copy t from stdin$$", false],
    ["select $body$copy t from stdin$body$", false],
    ["copy (select * from stdin_rows) to stdout", false],
    ["select 'copy'; select 'from stdin'", false]
  ]
  for (const [sql, expected] of cases) {
    it(`returns ${expected} for ${JSON.stringify(sql)}`, () => {
      expect(hasCopyFromStdin(sql)).toBe(expected)
    })
  }
})

describe("guardCopyFromStdin", () => {
  it("keeps other messages unchanged", () => {
    const query = encodeQuery("copy t to stdout")
    const parse = parseMessage("", "select $1", [23])
    const sync = Uint8Array.of(0x53, 0, 0, 0, 4)

    expect(guardCopyFromStdin(query)).toBe(query)
    expect(guardCopyFromStdin(parse)).toBe(parse)
    expect(guardCopyFromStdin(sync)).toBe(sync)
  })

  it("replaces the statement of a Query", () => {
    const guarded = Buffer.from(guardCopyFromStdin(encodeQuery("copy t from stdin")))

    expect(String.fromCharCode(guarded[0]!)).toBe("Q")
    expect(guarded.readInt32BE(1)).toBe(guarded.length - 1)
    expect(guarded.toString("utf8", 5, guarded.length - 1)).toMatch(/^DO \$\$ BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported'/)
    expect(guarded[guarded.length - 1]).toBe(0)
  })

  it("keeps the name and types of a Parse", () => {
    const guarded = Buffer.from(guardCopyFromStdin(parseMessage("load", "copy t from stdin", [25, 23])))
    const fields = guarded.subarray(5).toString("latin1").split("\0")

    expect(String.fromCharCode(guarded[0]!)).toBe("P")
    expect(guarded.readInt32BE(1)).toBe(guarded.length - 1)
    expect(fields[0]).toBe("load")
    expect(fields[1]).toMatch(/^DO \$\$ BEGIN RAISE EXCEPTION/)
    const types = guarded.subarray(guarded.length - 10)
    expect(types.readInt16BE(0)).toBe(2)
    expect(types.readInt32BE(2)).toBe(25)
    expect(types.readInt32BE(6)).toBe(23)
  })
})
