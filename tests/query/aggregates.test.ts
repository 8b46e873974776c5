import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type DeviceReading, fetchText, type QueryPipeline, startQueryPipeline, type StoredValue, storedValues, tsToMicros } from "../support/QueryFixture.ts"

const functions = ["avg", "min", "max", "sum", "count", "first", "last"] as const
type Fn = (typeof functions)[number]

const day0 = Date.UTC(2022, 2, 4) / 1000
const gap = { from: day0 + 6 * 3600, to: day0 + 12 * 3600 }

/**
 * Sensors 1 and 2 every 10 minutes for two days, both at the same instants, with values that
 * are multiples of 0.25 so that sums are exact in any order. Sensor 2 has no readings from 06:00
 * to 12:00 on the first day.
 */
const baseReadings: Array<DeviceReading> = []
for (let step = 0; step < 288; step++) {
  const ts = day0 + step * 600
  for (const sensor of [1, 2]) {
    if (sensor === 2 && ts >= gap.from && ts < gap.to) continue
    baseReadings.push({ ts, sensor_id: sensor, temperature: ((step * 7 + sensor * 3) % 40) / 4, cpu: (step * 13 + sensor) % 100 })
  }
}

/** Hourly readings of sensor 20 around the 2024 daylight-saving changes of Europe/Berlin. */
const dstReadings: Array<DeviceReading> = []
for (const first of [Date.UTC(2024, 2, 28), Date.UTC(2024, 9, 24)]) {
  for (let hour = 0; hour < 24 * 6; hour++) dstReadings.push({ ts: first / 1000 + hour * 3600, sensor_id: 20, temperature: hour % 7 })
}

/** Returns the stored values, where a later write of the same sensor, metric and instant replaces an earlier one. */
const latestWins = (readings: ReadonlyArray<DeviceReading>): Array<StoredValue> => {
  const byKey = new Map<string, StoredValue>()
  for (const value of storedValues(readings)) byKey.set(`${value.sensorId}/${value.metric}/${value.timeMicros}`, value)
  return [...byKey.values()]
}

/** Computes one aggregate per (sensor, bucket) of fixed `widthSeconds` from stored values, independently of the server. */
const expectedSeries = (values: ReadonlyArray<StoredValue>, fn: Fn, metric: string, widthSeconds: number, from: number, to: number) => {
  const width = widthSeconds * 1e6
  const groups = new Map<string, Array<StoredValue>>()
  for (const value of values) {
    if (value.metric !== metric || value.timeMicros < from || value.timeMicros >= to) continue
    const key = `${value.sensorId}/${Math.floor(value.timeMicros / width) * width}`
    groups.set(key, [...(groups.get(key) ?? []), value])
  }
  const result: Array<{ sensor: number; period: number; value: number }> = []
  for (const [key, group] of groups) {
    const [sensor, period] = key.split("/").map(Number) as [number, number]
    const numbers = group.map((value) => value.value)
    const byTime = [...group].sort((a, b) => a.timeMicros - b.timeMicros)
    const sum = numbers.reduce((total, value) => total + value, 0)
    const value = {
      avg: sum / numbers.length,
      min: Math.min(...numbers),
      max: Math.max(...numbers),
      sum,
      count: numbers.length,
      first: byTime[0]!.value,
      last: byTime[byTime.length - 1]!.value
    }[fn]
    result.push({ sensor, period, value })
  }
  return result.sort((a, b) => a.sensor - b.sensor || a.period - b.period)
}

/**
 * Sensor 30's humidity: one reading on 2022-01-01 and hourly readings from 2026-12-02 to
 * 2026-12-04, about 43,000 hourly buckets apart, more than the maximum of 10,000.
 */
const openRangeReadings: Array<DeviceReading> = [{ ts: "2022-01-01T00:00:00Z", sensor_id: 30, humidity: 40 }]
for (let hour = 0; hour < 72; hour++) openRangeReadings.push({ ts: Date.UTC(2026, 11, 2) / 1000 + hour * 3600, sensor_id: 30, humidity: hour })

let pipeline: QueryPipeline
let stored: Array<DeviceReading> = [...baseReadings, ...dstReadings, ...openRangeReadings]

const aggregates = (params: Record<string, unknown>) =>
  pipeline.run(pipeline.client.sensors.aggregates({ urlParams: params as never }))

/** The server's series as (sensor, period, value) rows, for comparison with `expectedSeries`. */
const seriesOf = (response: { data: ReadonlyArray<{ period: string; sensor_id?: number; values: Record<string, number | null> }> }, metric: string) =>
  response.data.map((row) => ({ sensor: row.sensor_id!, period: tsToMicros(row.period), value: row.values[metric]! }))

/** Runs `check` with the process time zone set to UTC and to Europe/Berlin; responses must not depend on it. */
const inEachProcessZone = async (check: () => Promise<void>) => {
  const original = process.env.TZ
  try {
    for (const zone of ["UTC", "Europe/Berlin"]) {
      process.env.TZ = zone
      await check()
    }
  } finally {
    if (original === undefined) delete process.env.TZ
    else process.env.TZ = original
  }
}

const range = { from: tsToMicros(day0), to: tsToMicros(day0 + 2 * 86_400) }

beforeAll(async () => {
  pipeline = await startQueryPipeline("aggregates")
  await pipeline.write(stored, storedValues(stored).length)
}, 180_000)

afterAll(() => pipeline?.dispose())

describe("aggregates", () => {
  it("compute each function from raw readings", async () => {
    await inEachProcessZone(async () => {
      for (const fn of functions) {
        const response = await aggregates({ metric: ["temperature"], fn, bucket: 3600, group_by: "sensor", sensor_id: [1, 2], ...range })
        expect(response.source).toBe("raw")
        expect(response.bucket).toBe("1h")
        expect(response.bucket_seconds).toBe(3600)
        expect(seriesOf(response, "temperature")).toEqual(expectedSeries(latestWins(stored), fn, "temperature", 3600, range.from, range.to))
      }
    })
  })

  it("serve each function from the read models after a refresh", async () => {
    await pipeline.refresh()
    const cases = [
      { bucket: 1800, readModel: "sensor_data_1m" },
      { bucket: 7200, readModel: "sensor_data_1h" },
      { bucket: 86_400, readModel: "sensor_data_1d" }
    ]
    for (const { bucket, readModel } of cases) {
      for (const fn of functions) {
        const params = { metric: ["temperature", "cpu"], fn, bucket, group_by: "sensor", sensor_id: [1, 2], ...range }
        const served = await aggregates(params)
        const raw = await aggregates({ ...params, source: "raw" })
        expect(served.read_model).toBe(readModel)
        expect(served.source).toBe("read_model")
        expect(raw.source).toBe("raw")
        expect(served.data).toEqual(raw.data)
        for (const metric of ["temperature", "cpu"]) {
          expect(seriesOf(served, metric)).toEqual(expectedSeries(latestWins(stored), fn, metric, bucket, range.from, range.to))
        }
      }
    }
  })

  it("combine read models with readings written since the refresh", async () => {
    const late: Array<DeviceReading> = [
      // New instants inside the materialised range, and one replaced value.
      { ts: day0 + 3 * 3600 + 65, sensor_id: 1, temperature: 100.25, cpu: -3 },
      { ts: day0 + 20 * 3600 + 1, sensor_id: 2, temperature: -50.5, cpu: 7 },
      { ts: day0 + 600, sensor_id: 1, temperature: 42.75, cpu: 99 },
      // And readings after it.
      { ts: day0 + 2 * 86_400 + 30, sensor_id: 1, temperature: 3.5, cpu: 1 }
    ]
    stored = [...stored, ...late]
    await pipeline.write(late, latestWins(stored).length)
    const wide = { from: range.from, to: range.to + 3600 * 1e6 }
    await inEachProcessZone(async () => {
      for (const fn of functions) {
        const params = { metric: ["temperature"], fn, bucket: 3600, group_by: "sensor", sensor_id: [1, 2], ...wide }
        const served = await aggregates(params)
        // TimescaleDB logs one invalidated range per transaction, from its earliest to its
        // latest write, so the late batch above invalidates most of the first day in every
        // read model. What stays valid is served from one, the rest from raw readings.
        expect(served.source).toBe("read_model+raw")
        expect(served.read_model).not.toBe(null)
        expect(seriesOf(served, "temperature")).toEqual(expectedSeries(latestWins(stored), fn, "temperature", 3600, wide.from, wide.to))
        expect(served.data).toEqual((await aggregates({ ...params, source: "raw" })).data)
      }
    })
    await pipeline.refresh()
    const refreshed = await aggregates({ metric: ["temperature"], fn: "sum", bucket: 3600, group_by: "sensor", sensor_id: [1, 2], ...range })
    expect(refreshed.source).toBe("read_model")
    expect(seriesOf(refreshed, "temperature")).toEqual(expectedSeries(latestWins(stored), "sum", "temperature", 3600, range.from, range.to))
  })

  it("merge sensors unless grouped", async () => {
    const merged = await aggregates({ metric: ["cpu"], fn: "count", bucket: 86_400, sensor_id: [1, 2], ...range })
    const counts = expectedSeries(latestWins(stored), "count", "cpu", 86_400, range.from, range.to)
    expect(merged.data.map((row) => row.sensor_id)).toEqual([undefined, undefined])
    expect(merged.data.map((row) => row.values.cpu)).toEqual([
      counts.filter((row) => row.period === range.from).reduce((total, row) => total + row.value, 0),
      counts.filter((row) => row.period === range.from + 86_400e6).reduce((total, row) => total + row.value, 0)
    ])
  })

  it("clips the last bucket to the range", async () => {
    const response = await aggregates({
      metric: ["cpu"],
      fn: "count",
      bucket: 3600,
      sensor_id: [1],
      from: tsToMicros(day0 + 4 * 3600),
      to: tsToMicros(day0 + 6 * 3600 + 1800)
    })
    expect(response.data.map((row) => [row.period, row.values.cpu])).toEqual([
      ["2022-03-04T04:00:00.000Z", 6],
      ["2022-03-04T05:00:00.000Z", 6],
      ["2022-03-04T06:00:00.000Z", 3]
    ])
    expect(response.to).toBe("2022-03-04T06:30:00.000Z")
  })
})

describe("gap filling", () => {
  const window = { from: tsToMicros(day0 + 4 * 3600), to: tsToMicros(day0 + 14 * 3600) }
  const hours = Array.from({ length: 10 }, (_, index) => new Date((day0 + (4 + index) * 3600) * 1000).toISOString())
  const base = { metric: ["temperature"], fn: "max", bucket: 3600, sensor_id: [2], ...window }

  const known = () => {
    const sensor2 = latestWins(stored).filter((value) => value.sensorId === 2)
    const series = expectedSeries(sensor2, "max", "temperature", 3600, window.from, window.to)
    return new Map(series.map((row) => [new Date(row.period / 1000).toISOString(), row.value]))
  }

  it("leaves empty buckets out with none", async () => {
    const response = await aggregates({ ...base, fill: "none" })
    expect(response.data.map((row) => row.period)).toEqual(hours.filter((hour) => known().has(hour)))
  })

  it("fills null, previous and linear", async () => {
    const values = known()
    const before = values.get(hours[1]!)!
    const after = values.get(hours[8]!)!
    const nulls = await aggregates({ ...base, fill: "null" })
    expect(nulls.data.map((row) => row.period)).toEqual(hours)
    expect(nulls.data.map((row) => row.values.temperature)).toEqual(hours.map((hour) => values.get(hour) ?? null))

    const previous = await aggregates({ ...base, fill: "previous" })
    expect(previous.data.map((row) => row.values.temperature)).toEqual(hours.map((hour) => values.get(hour) ?? before))

    const linear = await aggregates({ ...base, fill: "linear" })
    expect(linear.data.map((row) => row.values.temperature)).toEqual(
      hours.map((hour, index) => values.get(hour) ?? before + ((after - before) * (index - 1)) / 7)
    )
  })

  it("counts empty buckets as zero", async () => {
    const response = await aggregates({ ...base, fn: "count", fill: "null" })
    expect(response.data.map((row) => row.values.temperature)).toEqual(hours.map((hour) => (known().has(hour) ? 6 : 0)))
  })
})

describe("calendar buckets", () => {
  const berlinDays = async (from: string, to: string) =>
    aggregates({ metric: ["temperature"], fn: "count", bucket: "day", time_zone: "Europe/Berlin", sensor_id: [20], from: tsToMicros(from), to: tsToMicros(to) })

  it("has 23 and 25 hours on change days", async () => {
    await inEachProcessZone(async () => {
      const spring = await berlinDays("2024-03-29T23:00:00Z", "2024-03-31T22:00:00Z")
      expect(spring.data.map((row) => [row.period, row.values.temperature])).toEqual([
        ["2024-03-29T23:00:00.000Z", 24],
        ["2024-03-30T23:00:00.000Z", 23]
      ])
      const autumn = await berlinDays("2024-10-25T22:00:00Z", "2024-10-27T23:00:00Z")
      expect(autumn.data.map((row) => [row.period, row.values.temperature])).toEqual([
        ["2024-10-25T22:00:00.000Z", 24],
        ["2024-10-26T22:00:00.000Z", 25]
      ])
      expect(autumn.bucket).toBe("day")
      expect(autumn.bucket_seconds).toBe(null)
    })
  })

  it("starts weeks on Monday and months on the first", async () => {
    const weeks = await aggregates({
      metric: ["temperature"],
      fn: "count",
      bucket: "week",
      time_zone: "Europe/Berlin",
      sensor_id: [20],
      from: tsToMicros("2024-03-27T00:00:00Z"),
      to: tsToMicros("2024-04-03T00:00:00Z")
    })
    // Monday 2024-03-25 and Monday 2024-04-01, local midnight.
    expect(weeks.data.map((row) => row.period)).toEqual(["2024-03-24T23:00:00.000Z", "2024-03-31T22:00:00.000Z"])
    const months = await aggregates({
      metric: ["temperature"],
      fn: "count",
      bucket: "month",
      time_zone: "Europe/Berlin",
      sensor_id: [20],
      from: tsToMicros("2024-03-28T00:00:00Z"),
      to: tsToMicros("2024-04-03T00:00:00Z")
    })
    expect(months.data.map((row) => row.period)).toEqual(["2024-02-29T23:00:00.000Z", "2024-03-31T22:00:00.000Z"])
    const values = storedValues(dstReadings).filter((value) => value.timeMicros >= tsToMicros("2024-03-28T00:00:00Z") && value.timeMicros < tsToMicros("2024-04-03T00:00:00Z"))
    const firstOfApril = tsToMicros("2024-03-31T22:00:00Z")
    expect(months.data.map((row) => row.values.temperature)).toEqual([
      values.filter((value) => value.timeMicros < firstOfApril).length,
      values.filter((value) => value.timeMicros >= firstOfApril).length
    ])
  })

  it("uses a read model that divides local days", async () => {
    await pipeline.refresh()
    const params = { metric: ["temperature"], fn: "sum", bucket: "day", sensor_id: [20], from: tsToMicros("2024-03-28T00:00:00Z"), to: tsToMicros("2024-04-02T00:00:00Z") }
    const berlin = await aggregates({ ...params, time_zone: "Europe/Berlin" })
    expect(berlin.read_model).toBe("sensor_data_1h")
    expect(berlin.data).toEqual((await aggregates({ ...params, time_zone: "Europe/Berlin", source: "raw" })).data)
    const kolkata = await aggregates({ ...params, time_zone: "Asia/Kolkata" })
    expect(kolkata.read_model).toBe("sensor_data_1m")
    expect(kolkata.data[1]?.period).toBe("2024-03-28T18:30:00.000Z")
    expect(kolkata.data).toEqual((await aggregates({ ...params, time_zone: "Asia/Kolkata", source: "raw" })).data)
    const utc = await aggregates(params)
    expect(utc.read_model).toBe("sensor_data_1d")
  })
})

describe("open ranges", () => {
  const hours2026 = Array.from({ length: 72 }, (_, hour) => new Date(Date.UTC(2026, 11, 2) + hour * 3600e3).toISOString())
  const getJson = async (path: string) => {
    const response = await fetchText(pipeline, path)
    expect(response.status).toBe(200)
    return JSON.parse(response.text) as {
      from: string | null
      to: string | null
      truncated: boolean
      data: Array<{ period: string; values: Record<string, number | null> }>
    }
  }

  it("keeps the latest buckets without from", async () => {
    const lastHour = Date.parse("2026-12-04T23:00:00Z")
    const firstKept = new Date(lastHour - 9999 * 3600e3).toISOString()
    // Too long a range shrinks to the readings first, so a `to` after the last reading ends
    // there, as no `to` does.
    for (const to of ["", "&to=2030-01-01T00:00:00Z"]) {
      const body = await getJson(`/v1/aggregates?metric=humidity&fn=count&bucket=1h&sensor_id=30${to}`)
      expect(body.truncated).toBe(true)
      expect(body.from).toBe(firstKept)
      expect(body.to).toBe("2026-12-04T23:00:00.000001Z")
      expect(body.data.map((row) => row.period)).toEqual(hours2026)
      expect(body.data.map((row) => row.values.humidity)).toEqual(hours2026.map(() => 1))
    }
  })

  it("starts a too early from at the first reading", async () => {
    // From 2026-01-01 to the last reading are more than 10,000 half hours, but the readings fit.
    const body = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=30m&sensor_id=30&from=2026-01-01T00:00:00Z")
    expect(body.truncated).toBe(false)
    expect(body.from).toBe("2026-12-02T00:00:00.000Z")
    expect(body.to).toBe("2026-12-04T23:00:00.000001Z")
    expect(body.data.map((row) => row.period)).toEqual(hours2026)
  })

  it("keeps a from that fits, with fill", async () => {
    const body = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=1h&fill=null&sensor_id=30&from=2026-12-01T00:00:00Z")
    expect(body.truncated).toBe(false)
    expect(body.from).toBe("2026-12-01T00:00:00.000Z")
    expect(body.data).toHaveLength(24 + 72)
    expect(body.data.slice(0, 24).map((row) => row.values.humidity)).toEqual(Array.from({ length: 24 }, () => 0))
    expect(body.data.slice(24).map((row) => row.period)).toEqual(hours2026)
  })

  it("keeps a to that fits, with fill", async () => {
    const body = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=day&fill=null&sensor_id=30&to=2026-12-07T00:00:00Z")
    expect(body.truncated).toBe(false)
    expect(body.from).toBe("2022-01-01T00:00:00.000Z")
    expect(body.to).toBe("2026-12-07T00:00:00.000Z")
    // The last two days have no readings and are filled.
    expect(body.data.slice(-2)).toEqual([
      { period: "2026-12-05T00:00:00.000Z", values: { humidity: 0 } },
      { period: "2026-12-06T00:00:00.000Z", values: { humidity: 0 } }
    ])
  })

  it("keeps the first buckets without to", async () => {
    const body = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=1h&sensor_id=30&from=2021-06-01T00:00:00Z")
    expect(body.truncated).toBe(true)
    expect(body.from).toBe("2022-01-01T00:00:00.000Z")
    expect(body.to).toBe(new Date(Date.parse("2022-01-01T00:00:00Z") + 10_000 * 3600e3).toISOString())
    expect(body.data).toEqual([{ period: "2022-01-01T00:00:00.000Z", values: { humidity: 1 } }])
    // The client continues from the response's `to` and reaches the later readings.
    const next = await getJson(`/v1/aggregates?metric=humidity&fn=count&bucket=1h&sensor_id=30&from=${body.to}`)
    expect(next.truncated).toBe(false)
    expect(next.data.map((row) => row.period)).toEqual(hours2026)
  })

  it("keeps the latest local days and months", async () => {
    // 2026-12-04T23:00Z, the last reading, is midnight of 2026-12-05 in Berlin.
    const days = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=day&time_zone=Europe/Berlin&max_data_points=2&sensor_id=30")
    expect(days.truncated).toBe(true)
    expect(days.from).toBe("2026-12-03T23:00:00.000Z")
    expect(days.data).toEqual([
      { period: "2026-12-03T23:00:00.000Z", values: { humidity: 24 } },
      { period: "2026-12-04T23:00:00.000Z", values: { humidity: 1 } }
    ])
    const months = await getJson("/v1/aggregates?metric=humidity&fn=count&bucket=month&time_zone=Europe/Berlin&max_data_points=1&sensor_id=30")
    expect(months.truncated).toBe(true)
    expect(months.from).toBe("2026-11-30T23:00:00.000Z")
    expect(months.data).toEqual([{ period: "2026-11-30T23:00:00.000Z", values: { humidity: 72 } }])
  })

  it("still rejects a closed range with too many buckets", async () => {
    const response = await fetchText(pipeline, "/v1/aggregates?metric=humidity&bucket=1h&sensor_id=30&from=2021-06-01T00:00:00Z&to=2030-01-01T00:00:00Z")
    expect(response.status).toBe(400)
    expect(JSON.parse(response.text)._tag).toBe("TooManyPoints")
  })
})

describe("bucket width limits", () => {
  it("picks the width from max_data_points", async () => {
    const response = await aggregates({ metric: ["cpu"], fn: "avg", max_data_points: 10, ...range })
    expect(response.bucket).toBe("6h")
    expect(response.bucket_seconds).toBe(21_600)
    expect(response.data.length).toBeLessThanOrEqual(10)
    expect(response.data).toHaveLength(8)
  })

  it("rejects from=0&to=now&bucket=1s", async () => {
    const response = await fetchText(pipeline, "/v1/aggregates?metric=temperature&from=0&to=now&bucket=1s")
    expect(response.status).toBe(400)
    const body = JSON.parse(response.text)
    expect(body._tag).toBe("TooManyPoints")
    expect(body.maximum).toBe(10_000)
    expect(body.count).toBeGreaterThan(1_700_000_000)
    expect(body.suggested_bucket).toBe("7d")
  })

  it("rejects too many points before reading", async () => {
    const now = Math.floor(Date.now() / 1000)
    const result = await pipeline.run(
      Effect.either(pipeline.client.sensors.aggregates({ urlParams: { metric: ["temperature"], fn: "avg", bucket: 1, from: 0, to: now * 1e6 } as never }))
    )
    expect(result._tag).toBe("Left")
    const error = result._tag === "Left" ? (result.left as unknown as Record<string, unknown>) : {}
    expect(error._tag).toBe("TooManyPoints")
    expect(error.parameter).toBe("bucket")
    expect(error.maximum).toBe(10_000)
    expect(error.count).toBe(now)
    expect(error.suggested_bucket).toBe("7d")
    expect(String(error.message)).toContain(`the range contains ${now} buckets of 1s, more than the maximum of 10000`)
    expect(String(error.message)).toContain(`use a bucket of at least ${String(error.suggested_bucket)}`)
  })
})
