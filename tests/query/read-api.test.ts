import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { exportChunkSize } from "../../src/query/ReadingsHandlers.ts"
import { type DeviceReading, fetchText, type QueryPipeline, startQueryPipeline, storedValues, tsToMicros } from "../support/QueryFixture.ts"

const day0 = Date.UTC(2022, 2, 4) / 1000

/**
 * Sensors 1 and 2 share every timestamp, one a minute. Sensor 3 has three readings whose
 * timestamps differ only in microseconds, and sensor 4 only reports cpu. Together there are more
 * values than one export chunk.
 */
const readings: Array<DeviceReading> = []
for (let minute = 0; minute < 1500; minute++) {
  for (const sensor of [1, 2]) readings.push({ ts: day0 + minute * 60, sensor_id: sensor, temperature: minute % 30, cpu: (minute * sensor) % 100 })
}
for (const fraction of ["000001", "000002", "000003"]) {
  readings.push({ ts: `2022-03-05T00:00:00.${fraction}Z`, sensor_id: 3, temperature: Number(fraction) })
}
readings.push({ ts: day0 + 10, sensor_id: 4, cpu: 55 })
const values = storedValues(readings)

/** A stored value as the API lists it. */
const asPoint = (value: (typeof values)[number]) => ({
  ts: new Date(Math.floor(value.timeMicros / 1000)).toISOString().replace(/Z$/, value.timeMicros % 1000 === 0 ? "Z" : `${String(value.timeMicros % 1000).padStart(3, "0")}Z`),
  sensor_id: value.sensorId,
  metric: value.metric,
  value: value.value
})

/** The API's order: time, then sensor id, then metric id (temperature was registered before cpu). */
const metricOrder: Record<string, number> = { temperature: 1, cpu: 2 }
const ascending = [...values].sort((a, b) =>
  a.timeMicros - b.timeMicros || a.sensorId - b.sensorId || metricOrder[a.metric]! - metricOrder[b.metric]!
)

let pipeline: QueryPipeline

const withProcessZone = async (zone: string, check: () => Promise<void>) => {
  const original = process.env.TZ
  process.env.TZ = zone
  try {
    await check()
  } finally {
    if (original === undefined) delete process.env.TZ
    else process.env.TZ = original
  }
}

beforeAll(async () => {
  pipeline = await startQueryPipeline("read-api")
  await pipeline.describeSensors([
    { id: 1, type: "thermo", location: "hall-a" },
    { id: 2, type: "thermo", location: "roof" },
    { id: 5, type: "hygro", location: "roof" }
  ])
  await pipeline.write(readings, values.length)
}, 180_000)

afterAll(() => pipeline?.dispose())

describe("raw readings", () => {
  const pageThrough = async (urlParams: Record<string, unknown>) => {
    const seen: Array<unknown> = []
    let cursor: string | undefined
    let pages = 0
    let lastPageHadCursor = true
    do {
      const page = await pipeline.run(
        pipeline.client.readings.readings({ urlParams: { ...urlParams, ...(cursor === undefined ? {} : { cursor }) } as never })
      )
      seen.push(...page.data)
      cursor = page.next_cursor
      lastPageHadCursor = cursor !== undefined
      pages++
    } while (cursor !== undefined && pages < 1000)
    return { seen, pages, lastPageHadCursor }
  }

  it("visits every reading once in both orders", async () => {
    for (const zone of ["UTC", "Europe/Berlin"]) {
      await withProcessZone(zone, async () => {
        const forward = await pageThrough({ order: "asc", limit: 997 })
        expect(forward.seen).toEqual(ascending.map(asPoint))
        expect(forward.lastPageHadCursor).toBe(false)
        expect(forward.pages).toBe(Math.ceil(ascending.length / 997))
        const backward = await pageThrough({ order: "desc", limit: 1000 })
        expect(backward.seen).toEqual([...ascending].reverse().map(asPoint))
      })
    }
  })

  it("keeps microseconds apart across pages", async () => {
    const result = await pageThrough({ sensor_id: [3], order: "asc", limit: 1 })
    expect(result.seen).toEqual([
      { ts: "2022-03-05T00:00:00.000001Z", sensor_id: 3, metric: "temperature", value: 1 },
      { ts: "2022-03-05T00:00:00.000002Z", sensor_id: 3, metric: "temperature", value: 2 },
      { ts: "2022-03-05T00:00:00.000003Z", sensor_id: 3, metric: "temperature", value: 3 }
    ])
    expect(result.pages).toBe(3)
  })

  it("filters by sensor, metric and range", async () => {
    const from = tsToMicros(day0 + 600)
    const to = tsToMicros(day0 + 900)
    const page = await pipeline.run(
      pipeline.client.readings.readings({ urlParams: { sensor_id: [2], metric: ["cpu"], from, to, order: "asc", limit: 100 } as never })
    )
    expect(page.data).toEqual(
      ascending.filter((value) => value.sensorId === 2 && value.metric === "cpu" && value.timeMicros >= from && value.timeMicros < to).map(asPoint)
    )
    expect(page.data).toHaveLength(5)
    expect(page.next_cursor).toBeUndefined()
  })

  it("applies the default limit", async () => {
    // The derived client always sends the defaults, so this request is plain.
    const response = await fetchText(pipeline, "/v1/readings")
    const page = JSON.parse(response.text)
    expect(page.data).toHaveLength(1000)
    expect(typeof page.next_cursor).toBe("string")
  })

  // `now` resolves to another instant on every request, and the cursor must still fit.
  it("pages through a range ending now", async () => {
    const seen: Array<unknown> = []
    let cursor: string | undefined
    let pages = 0
    do {
      await new Promise((resolve) => setTimeout(resolve, 5))
      const response = await fetchText(pipeline, `/v1/readings?sensor_id=1&limit=1000&to=now${cursor === undefined ? "" : `&cursor=${cursor}`}`)
      expect(response.status).toBe(200)
      const page = JSON.parse(response.text) as { data: Array<unknown>; next_cursor?: string }
      seen.push(...page.data)
      cursor = page.next_cursor
      pages += 1
    } while (cursor !== undefined && pages < 100)
    expect(pages).toBeGreaterThan(1)
    expect(seen).toEqual(ascending.filter((value) => value.sensorId === 1).map(asPoint))
  })

  it("rejects a cursor of another query", async () => {
    const first = await pipeline.run(pipeline.client.readings.readings({ urlParams: { sensor_id: [1], order: "asc", limit: 2 } as never }))
    const reused = await fetchText(pipeline, `/v1/readings?sensor_id=2&limit=2&cursor=${first.next_cursor}`)
    expect(reused.status).toBe(400)
    expect(JSON.parse(reused.text)).toMatchObject({ _tag: "InvalidQuery", parameter: "cursor" })
    const garbage = await fetchText(pipeline, "/v1/readings?cursor=not-a-cursor")
    expect(garbage.status).toBe(400)
    expect(JSON.parse(garbage.text).message).toContain("next_cursor of a previous page")
  })
})

describe("export", () => {
  it("streams NDJSON in several chunks", async () => {
    expect(values.length).toBeGreaterThan(exportChunkSize)
    const response = await fetchText(pipeline, "/v1/export")
    expect(response.status).toBe(200)
    expect(response.contentType).toBe("application/x-ndjson")
    const lines = response.text.trimEnd().split("\n").map((line) => JSON.parse(line))
    expect(lines).toEqual(ascending.map(asPoint))
  })

  it("writes CSV for Accept text/csv or format=csv", async () => {
    const expected = ["ts,sensor_id,metric,value", ...ascending.filter((value) => value.sensorId === 3).map((value) => {
      const point = asPoint(value)
      return `${point.ts},${point.sensor_id},${point.metric},${point.value}`
    })].join("\n") + "\n"
    const negotiated = await fetchText(pipeline, "/v1/export?sensor_id=3", { accept: "text/csv" })
    expect(negotiated.status).toBe(200)
    expect(negotiated.contentType).toBe("text/csv; charset=utf-8")
    expect(negotiated.text).toBe(expected)
    const parameter = await fetchText(pipeline, "/v1/export?sensor_id=3&format=csv")
    expect(parameter.text).toBe(expected)
  })

  it("returns a range through the derived client", async () => {
    const text = await pipeline.run(
      pipeline.client.readings.export({ urlParams: { sensor_id: [4] } as never, headers: {} })
    )
    expect(text).toBe(`${JSON.stringify({ ts: "2022-03-04T00:00:10.000Z", sensor_id: 4, metric: "cpu", value: 55 })}\n`)
  })
})

describe("sensor catalog", () => {
  it("lists summaries with metrics and reading times", async () => {
    await withProcessZone("Europe/Berlin", async () => {
      const page = await pipeline.run(pipeline.client.catalog.sensorSummaries({ urlParams: { page: 1, page_size: 100 } }))
      expect(page.sensors).toEqual([
        { id: 1, type: "thermo", location: "hall-a", metrics: ["cpu", "temperature"], first_reading: "2022-03-04T00:00:00.000Z", last_reading: "2022-03-05T00:59:00.000Z" },
        { id: 2, type: "thermo", location: "roof", metrics: ["cpu", "temperature"], first_reading: "2022-03-04T00:00:00.000Z", last_reading: "2022-03-05T00:59:00.000Z" },
        { id: 3, type: "", location: "", metrics: ["temperature"], first_reading: "2022-03-05T00:00:00.000001Z", last_reading: "2022-03-05T00:00:00.000003Z" },
        { id: 4, type: "", location: "", metrics: ["cpu"], first_reading: "2022-03-04T00:00:10.000Z", last_reading: "2022-03-04T00:00:10.000Z" },
        { id: 5, type: "hygro", location: "roof", metrics: [], first_reading: null, last_reading: null }
      ])
    })
  })

  it("filters summaries by type and location", async () => {
    const roof = await pipeline.run(pipeline.client.catalog.sensorSummaries({ urlParams: { page: 1, page_size: 100, location: "roof" } }))
    expect(roof.sensors.map((sensor) => sensor.id)).toEqual([2, 5])
    const thermoOnRoof = await pipeline.run(
      pipeline.client.catalog.sensorSummaries({ urlParams: { page: 1, page_size: 100, location: "roof", type: "thermo" } })
    )
    expect(thermoOnRoof.sensors.map((sensor) => sensor.id)).toEqual([2])
    const second = await pipeline.run(pipeline.client.catalog.sensorSummaries({ urlParams: { page: 2, page_size: 2 } }))
    expect(second.sensors.map((sensor) => sensor.id)).toEqual([3, 4])
  })

  it("gets one sensor or 404", async () => {
    const sensor = await pipeline.run(pipeline.client.catalog.getSensor({ path: { id: 3 as never } }))
    expect(sensor.metrics).toEqual(["temperature"])
    const missing = await pipeline.run(Effect.either(pipeline.client.catalog.getSensor({ path: { id: 99 as never } })))
    expect(missing._tag).toBe("Left")
    expect(missing._tag === "Left" ? missing.left._tag : "").toBe("SensorNotFound")
    const raw = await fetchText(pipeline, "/v1/sensors/99")
    expect(raw.status).toBe(404)
    expect(JSON.parse(raw.text)).toMatchObject({ _tag: "SensorNotFound", sensor_ids: [99] })
  })

  it("returns the latest values from the read model", async () => {
    const latest = await pipeline.run(pipeline.client.catalog.latest({ urlParams: { page: 1, page_size: 100, sensor_id: [1, 3] as never } }))
    expect(latest.data).toEqual([
      { sensor_id: 1, metrics: { temperature: { ts: "2022-03-05T00:59:00.000Z", value: 1499 % 30 }, cpu: { ts: "2022-03-05T00:59:00.000Z", value: 1499 % 100 } } },
      { sensor_id: 3, metrics: { temperature: { ts: "2022-03-05T00:00:00.000003Z", value: 3 } } }
    ])
    const onlyCpu = await pipeline.run(pipeline.client.catalog.latest({ urlParams: { page: 1, page_size: 100, metric: ["cpu"] as never } }))
    expect(onlyCpu.data.map((row) => [row.sensor_id, Object.keys(row.metrics)])).toEqual([[1, ["cpu"]], [2, ["cpu"]], [4, ["cpu"]]])
  })

  it("keeps the latest value when an older reading arrives", async () => {
    await pipeline.write([{ ts: day0, sensor_id: 4, cpu: 1 }], values.length + 1)
    const latest = await pipeline.run(pipeline.client.catalog.latest({ urlParams: { page: 1, page_size: 100, sensor_id: [4] as never } }))
    expect(latest.data).toEqual([{ sensor_id: 4, metrics: { cpu: { ts: "2022-03-04T00:00:10.000Z", value: 55 } } }])
  })
})

describe("errors", () => {
  const cases: Array<[path: string, parameter: string, value: string, expected: string]> = [
    ["/v1/readings?limit=0", "limit", "0", "expected an integer from 1 to 10000"],
    ["/v1/readings?order=sideways", "order", "sideways", "expected one of asc, desc"],
    ["/v1/readings?from=yesterday", "from", "yesterday", "is not an instant: expected Unix seconds"],
    ["/v1/readings?from=2022-13-45T00:00:00Z", "from", "2022-13-45T00:00:00Z", "is not an instant: month 13 does not exist"],
    ["/v1/aggregates?metric=cpu&fn=median", "fn", "median", "expected one of avg, min, max, sum, count, first, last"],
    ["/v1/aggregates?metric=cpu&bucket=fortnight", "bucket", "fortnight", "expected a width from 1s to 366d"],
    ["/v1/aggregates?metric=cpu&bucket=day&time_zone=Mars/Olympus", "time_zone", "Mars/Olympus", "expected an IANA name"],
    ["/v1/aggregates?metric=cpu&fill=spline", "fill", "spline", "expected one of none, null, previous, linear"],
    ["/v1/aggregates?metric=cpu&max_data_points=0", "max_data_points", "0", "expected an integer from 1 to 10000"],
    ["/v1/export?format=xml", "format", "xml", "expected one of ndjson, csv"],
    ["/v1/sensors/abc", "id", "abc", "expected an integer from 0 to 9007199254740991"],
    ["/v1/latest?sensor_id=1,x", "sensor_id", "x", "expected an integer from 0 to 9007199254740991"],
    ["/v1/latest?sensor_id=9007199254740993", "sensor_id", "9007199254740993", "expected an integer from 0 to 9007199254740991"],
    ["/v1/sensors?page=99999999999999999999", "page", "99999999999999999999", "is not a page number: expected an integer from 1 to 9007199254740"],
    ["/v1/sensors?page=1e3", "page", "1e3", "expected an integer from 1 to 9007199254740, in decimal digits"],
    ["/v1/sensor-summaries?page_size=1001", "page_size", "1001", "is not a page size: expected an integer from 1 to 1000"],
    ["/v1/readings?limit=1e3", "limit", "1e3", "is not a limit: expected an integer from 1 to 10000"]
  ]

  it.each(cases)("rejects %s", async (path, parameter, value, expected) => {
    const response = await fetchText(pipeline, path)
    expect(response.status).toBe(400)
    const body = JSON.parse(response.text)
    expect(body._tag).toBe("HttpApiDecodeError")
    const issue = body.issues.find((entry: { path: Array<string> }) => entry.path[0] === parameter)
    expect(issue).toBeDefined()
    expect(issue.message).toContain(JSON.stringify(value))
    expect(issue.message).toContain(expected)
  })

  it("rejects a time zone with a fixed width", async () => {
    const response = await fetchText(pipeline, "/v1/aggregates?metric=cpu&bucket=1h&time_zone=Europe/Berlin")
    expect(response.status).toBe(400)
    expect(JSON.parse(response.text)).toMatchObject({ _tag: "InvalidQuery", parameter: "time_zone", value: "Europe/Berlin" })
  })

  it("answers 404 for unknown sensors", async () => {
    for (const path of ["/v1/readings?sensor_id=1,98,99", "/v1/aggregates?metric=cpu&sensor_id=99", "/v1/latest?sensor_id=99", "/v1/export?sensor_id=99"]) {
      const response = await fetchText(pipeline, path)
      expect(response.status).toBe(404)
      expect(JSON.parse(response.text)).toMatchObject({ _tag: "SensorNotFound" })
    }
    const several = await fetchText(pipeline, "/v1/readings?sensor_id=1,98,99")
    expect(JSON.parse(several.text).sensor_ids).toEqual([98, 99])
  })

  it("answers 404 for unknown metrics", async () => {
    for (const path of ["/v1/readings?metric=temprature", "/v1/aggregates?metric=temprature", "/v1/latest?metric=temprature", "/v1/export?metric=temprature"]) {
      const response = await fetchText(pipeline, path)
      expect(response.status).toBe(404)
      const body = JSON.parse(response.text)
      expect(body._tag).toBe("MetricNotFound")
      expect(body.metrics).toEqual(["temprature"])
      expect(body.message).toContain(`no metric named "temprature"`)
      expect(body.message).toContain("GET /v1/sensor-summaries lists the metrics of each sensor")
    }
    const several = await fetchText(pipeline, "/v1/aggregates?metric=cpu,nosuch,temprature,nosuch")
    expect(several.status).toBe(404)
    expect(JSON.parse(several.text).metrics).toEqual(["nosuch", "temprature"])
    const typed = await pipeline.run(Effect.either(pipeline.client.readings.readings({ urlParams: { metric: ["nosuch"], order: "asc", limit: 10 } as never })))
    expect(typed._tag === "Left" ? typed.left._tag : "").toBe("MetricNotFound")
  })

  it("lists MetricNotFound in OpenAPI", async () => {
    const spec = JSON.parse((await fetchText(pipeline, "/openapi.json")).text)
    for (const path of ["/v1/readings", "/v1/export", "/v1/latest", "/v1/aggregates"]) {
      const notFound = JSON.stringify(spec.paths[path].get.responses["404"])
      expect(notFound).toContain("#/components/schemas/MetricNotFound")
    }
    expect(spec.components.schemas.MetricNotFound.required).toContain("metrics")
  })

  it("answers 200 for a metric without readings there", async () => {
    // Sensor 3 has only temperature readings, and no sensor has readings before 2022-03-04.
    for (const path of ["/v1/readings?metric=cpu&sensor_id=3", "/v1/latest?metric=cpu&sensor_id=3", "/v1/aggregates?metric=cpu&sensor_id=3", "/v1/readings?metric=cpu&to=2022-03-01T00:00:00Z"]) {
      const response = await fetchText(pipeline, path)
      expect(response.status).toBe(200)
      expect(JSON.parse(response.text).data).toEqual([])
    }
  })

  it("finds a metric registered since the cache filled", async () => {
    const before = await fetchText(pipeline, "/v1/readings?metric=pressure")
    expect(before.status).toBe(404)
    await pipeline.write([{ ts: day0, sensor_id: 6, pressure: 1013 }], values.length + 2)
    const after = await fetchText(pipeline, "/v1/readings?metric=pressure")
    expect(after.status).toBe(200)
    expect(JSON.parse(after.text).data).toEqual([{ ts: "2022-03-04T00:00:00.000Z", sensor_id: 6, metric: "pressure", value: 1013 }])
  })

  it.each([
    ["POST", "/v1/sensors", "GET"],
    ["DELETE", "/v1/sensors/3", "GET"],
    ["PUT", "/v1/aggregates?metric=cpu", "GET"],
    ["POST", "/openapi.json", "GET"],
    ["POST", "/health/ready", "GET"]
  ])("answers 405 for %s %s", async (method, path, allow) => {
    const response = await fetchText(pipeline, path, {}, method)
    expect(response.status).toBe(405)
    expect(response.allow).toBe(allow)
    expect(response.contentType).toContain("application/json")
    const body = JSON.parse(response.text)
    expect(body._tag).toBe("MethodNotAllowed")
    expect(body.message).toBe(`${method} is not allowed on ${path.split("?")[0]}, which accepts ${allow}; the API is listed at /openapi.json`)
  })

  it.each([["GET", "/v1/nosuch"], ["POST", "/v1/nosuch"], ["GET", "/v1/sensors/3/extra"]])("answers 404 for %s %s", async (method, path) => {
    const response = await fetchText(pipeline, path, {}, method)
    expect(response.status).toBe(404)
    expect(response.allow).toBe("")
    expect(JSON.parse(response.text)._tag).toBe("NotFound")
  })

  it("writes numbers as JSON numbers", async () => {
    const response = await fetchText(pipeline, "/v1/aggregates?metric=cpu&fn=count&bucket=1d&sensor_id=1,2&from=2022-03-04T00:00:00Z&to=2022-03-05T00:00:00Z")
    expect(response.text).toContain(`"values":{"cpu":${1440 * 2}}`)
    expect(response.text).toContain(`"bucket_seconds":86400`)
    const sensors = await fetchText(pipeline, "/v1/latest?sensor_id=4")
    expect(sensors.text).toContain(`"sensor_id":4`)
  })
})

describe("statement timeout", () => {
  it("answers 503 when a query runs out of time", async () => {
    const limited = await startQueryPipeline("timeout", { QUERY_STATEMENT_TIMEOUT_MS: "1" })
    try {
      await limited.write(readings.slice(0, 2000), storedValues(readings.slice(0, 2000)).length)
      const response = await fetchText(limited, "/v1/aggregates?metric=temperature,cpu&fn=last&bucket=1m&source=raw&group_by=sensor&from=2022-03-04T00:00:00Z&to=2022-03-05T00:00:00Z")
      expect(response.status).toBe(503)
      const body = JSON.parse(response.text)
      expect(body._tag).toBe("QueryUnavailable")
      expect(body.message).toContain("took longer than 1 ms (QUERY_STATEMENT_TIMEOUT_MS)")
    } finally {
      await limited.dispose()
    }
  }, 180_000)
})
