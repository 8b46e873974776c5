import { Buffer } from "node:buffer"
import { SqlClient, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { expect, layer } from "@effect/vitest"
import { Data, Effect } from "effect"
import { Database, DatabaseInfo } from "../../../src/runtime/database/Database.ts"

class PlannedFailure extends Data.TaggedError("PlannedFailure")<{}> {}

/** The `code` of the pg DatabaseError behind a SqlError. */
const pgErrorCode = (error: SqlError.SqlError): unknown =>
  typeof error.cause === "object" && error.cause !== null && "code" in error.cause ? error.cause.code : undefined

layer(Database.layerEmbedded("memory://"))("Database.layerEmbedded", (it) => {
  it.effect("runs select 1", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient

      const rows = yield* sql`select 1 as one`

      expect(rows).toEqual([{ one: 1 }])
    }))

  it.effect("provides PgClient and DatabaseInfo", () =>
    Effect.gen(function*() {
      const pg = yield* PgClient.PgClient
      const info = yield* DatabaseInfo

      const rows = yield* pg`select current_setting('server_version_num')::int >= 170000 as pg17`

      expect(rows).toEqual([{ pg17: true }])
      expect(info).toEqual({ mode: "embedded", dataDir: "memory://", maxConnections: 1 })
      expect(pg.config.maxConnections).toBe(1)
      expect(pg.config.applicationName).toBe("sensor-logger")
    }))

  it.effect("binds parameters of several types", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const text = "héllo 'quoted' \"double\" \\ 🚀"
      const date = new Date("2024-02-29T12:34:56.789Z")
      const bytes = Buffer.from([0, 1, 2, 254, 255])

      const [row] = yield* sql<{
        text: string
        float: number
        int: number
        bool: boolean
        nothing: string | null
        time: Date
        big: number
        bytes: Buffer
        json: { a: Array<number> }
      }>`select
          ${text}::text as text,
          ${3.25}::float8 as float,
          ${-42}::int4 as int,
          ${true}::bool as bool,
          ${null}::text as nothing,
          ${date}::timestamptz as time,
          ${123n}::int8 as big,
          ${bytes}::bytea as bytes,
          ${JSON.stringify({ a: [1, 2] })}::jsonb as json`

      expect(row?.text).toBe(text)
      expect(row?.float).toBe(3.25)
      expect(row?.int).toBe(-42)
      expect(row?.bool).toBe(true)
      expect(row?.nothing).toBeNull()
      expect(row?.time).toEqual(date)
      expect(row?.big).toBe(123)
      expect(Buffer.isBuffer(row?.bytes)).toBe(true)
      expect(row?.bytes.equals(bytes)).toBe(true)
      expect(row?.json).toEqual({ a: [1, 2] })
    }))

  it.effect("returns SqlError and keeps the connection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient

      const error = yield* Effect.flip(sql`select * from table_that_does_not_exist`)
      const rows = yield* sql`select 2 as two`

      expect(error).toBeInstanceOf(SqlError.SqlError)
      expect(error._tag).toBe("SqlError")
      expect(pgErrorCode(error)).toBe("42P01")
      expect(rows).toEqual([{ two: 2 }])
    }))

  it.effect("rolls back a failed transaction", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table tx_rollback (id int primary key)`

      const failure = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* sql`insert into tx_rollback values (1), (2)`
        return yield* new PlannedFailure()
      })))
      const sqlFailure = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
        yield* sql`insert into tx_rollback values (3)`
        yield* sql`insert into tx_rollback values (3)`
      })))
      const rows = yield* sql<{ n: number }>`select count(*) as n from tx_rollback`
      yield* sql.withTransaction(sql`insert into tx_rollback values (4)`)
      const after = yield* sql<{ id: number }>`select id from tx_rollback`

      expect(failure).toBeInstanceOf(PlannedFailure)
      expect(pgErrorCode(sqlFailure)).toBe("23505")
      expect(rows).toEqual([{ n: 0 }])
      expect(after).toEqual([{ id: 4 }])
    }))

  it.effect("creates a hypertable and buckets by time", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create extension if not exists timescaledb`
      yield* sql`create table readings (time timestamptz not null, sensor int not null, value float8 not null)`
      yield* sql`select create_hypertable('readings', by_range('time', interval '1 day'))`
      const start = Date.parse("2024-01-01T00:00:00Z")
      const hour = 3_600_000
      // Three days, four readings per hour at 15-minute steps, value = the hour index.
      const times = Array.from({ length: 72 * 4 }, (_, i) => new Date(start + i * hour / 4).toISOString())
      const values = times.map((_, i) => Math.floor(i / 4))

      yield* sql`insert into readings
        select t, 1, v from unnest(${times}::timestamptz[], ${values}::float8[]) as u(t, v)`
      const buckets = yield* sql<{ bucket: Date; n: number; average: number }>`
        select time_bucket('6 hours', time) as bucket, count(*) as n, avg(value) as average
        from readings group by bucket order by bucket`
      const chunks = yield* sql<{ n: number }>`
        select count(*) as n from timescaledb_information.chunks where hypertable_name = 'readings'`
      const extension = yield* sql<{ version: string }>`
        select extversion as version from pg_extension where extname = 'timescaledb'`

      expect(buckets).toHaveLength(12)
      expect(buckets[0]).toEqual({ bucket: new Date(start), n: 24, average: 2.5 })
      expect(buckets[11]).toEqual({ bucket: new Date(start + 66 * hour), n: 24, average: 68.5 })
      expect(chunks).toEqual([{ n: 3 }])
      expect(extension[0]?.version).toMatch(/^2\./)
    }))

  it.effect("inserts 50,000 rows from unnest arrays", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table bulk (id bigint primary key, value float8 not null)`
      const size = 50_000
      const ids = Array.from({ length: size }, (_, i) => i + 1)
      const values = ids.map((id) => id / 8)
      // Second batch: half overlaps the first (ids 25,001..50,000), half is new (50,001..75,000).
      const overlappingIds = ids.map((id) => id + size / 2)
      const overlappingValues = overlappingIds.map(() => -1)

      const first = yield* sql`
        insert into bulk select * from unnest(${ids}::bigint[], ${values}::float8[])
        on conflict (id) do nothing`.raw
      const second = yield* sql`
        insert into bulk select * from unnest(${overlappingIds}::bigint[], ${overlappingValues}::float8[])
        on conflict (id) do update set value = excluded.value`.raw
      const [stats] = yield* sql<{ n: number; updated: number; maxId: number; sum: number }>`
        select count(*) as n, count(*) filter (where value = -1) as updated, max(id) as "maxId", sum(value) as sum
        from bulk`

      expect((first as { rowCount: number }).rowCount).toBe(size)
      expect((second as { rowCount: number }).rowCount).toBe(size)
      expect(stats?.n).toBe(75_000)
      expect(stats?.updated).toBe(50_000)
      expect(stats?.maxId).toBe(75_000)
      // Ids 1..25,000 keep id / 8: sum = 25,000 * 25,001 / 16. The other 50,000 rows hold -1.
      expect(stats?.sum).toBe(25_000 * 25_001 / 16 - 50_000)
    }))

  it.effect("binds arrays as one parameter", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const texts = ["a,b", "q\"uote", "back\\slash", "null", null, "{braces}", ""]

      const [array] = yield* sql<{ values: Array<number>; length: number }>`
        select ${[3, 1, 2]}::int4[] as values, cardinality(${[3, 1, 2]}::int4[]) as length`
      const unnested = yield* sql<{ value: string | null }>`
        select value from unnest(${texts}::text[]) with ordinality as u(value, position) order by position`
      const [found] = yield* sql<{ found: boolean }>`select 2 in ${sql.in([1, 2, 3])} as found`
      const [unsafe] = yield* sql.unsafe<{ total: number }>(
        "select sum(x) as total from unnest($1::int8[]) as u(x)",
        [[10, 20, 30]]
      )

      expect(array).toEqual({ values: [3, 1, 2], length: 3 })
      expect(unnested.map((row) => row.value)).toEqual(texts)
      expect(found).toEqual({ found: true })
      expect(unsafe).toEqual({ total: 60 })
    }))

  it.effect("parses int8 and numeric as numbers", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient

      const [row] = yield* sql<Record<string, unknown>>`select
          9007199254740991::int8 as max_safe,
          (-9007199254740991)::int8 as min_safe,
          12.345::numeric as decimal,
          'NaN'::numeric as nan,
          count(*) as count,
          sum(x) as sum
        from (values (1::int8), (2::int8)) as v(x)`
      const [arrays] = yield* sql<Record<string, unknown>>`select array[1, 2]::int8[] as int8s`

      expect(row).toEqual({
        max_safe: Number.MAX_SAFE_INTEGER,
        min_safe: -Number.MAX_SAFE_INTEGER,
        decimal: 12.345,
        nan: Number.NaN,
        count: 2,
        sum: 3
      })
      // Arrays keep pg's default parser, which returns int8 elements as strings.
      expect(arrays).toEqual({ int8s: ["1", "2"] })
    }))

  it.effect("fails on an int8 beyond the safe range", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient

      const error = yield* Effect.flip(sql`select 9007199254740993::int8 as id`)
      const [exact] = yield* sql<{ id: string }>`select 9007199254740993::int8::text as id`

      expect(error).toBeInstanceOf(SqlError.SqlError)
      expect(error.cause).toBeInstanceOf(RangeError)
      expect((error.cause as Error).message).toContain("9007199254740993")
      expect(exact).toEqual({ id: "9007199254740993" })
    }))

  it.effect("round-trips a 1 MB text parameter", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const text = Array.from({ length: 1024 * 1024 }, (_, i) => String.fromCharCode(97 + (i % 26))).join("")

      const [row] = yield* sql<{ echoed: string; length: number }>`
        select ${text}::text as echoed, length(${text}::text) as length`
      const [large] = yield* sql<{ length: number; digest: string }>`
        select length(x) as length, md5(x) as digest from (select repeat('0123456789', 300000) as x) as s`

      expect(row?.length).toBe(text.length)
      expect(row?.echoed === text).toBe(true)
      expect(large?.length).toBe(3_000_000)
      expect(large?.digest).toMatch(/^[0-9a-f]{32}$/)
    }))

  it.effect("lets timers run between back-to-back queries", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      let ticks = 0
      const timer = setInterval(() => {
        ticks++
      }, 1)

      const started = performance.now()
      for (let i = 0; i < 300; i++) {
        yield* sql`select ${i}::int as i`
      }
      const elapsed = performance.now() - started
      clearInterval(timer)

      // Without a macrotask turn per round trip, the loop runs entirely in microtasks and no tick fires.
      expect(elapsed).toBeGreaterThan(10)
      expect(ticks).toBeGreaterThan(0)
    }))

  it.effect("serializes concurrent statements on one connection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table concurrent (id int primary key)`

      const results = yield* Effect.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 4 === 0
            ? sql.withTransaction(sql`insert into concurrent values (${i}) returning id`)
            : sql<{ id: number }>`select ${i}::int as id`),
        { concurrency: "unbounded" }
      )
      const [count] = yield* sql<{ n: number }>`select count(*) as n from concurrent`

      expect(results.map((rows) => rows[0]?.id)).toEqual(Array.from({ length: 40 }, (_, i) => i))
      expect(count).toEqual({ n: 10 })
    }))
})
