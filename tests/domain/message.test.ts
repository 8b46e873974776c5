import { Either, ParseResult, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { decodeReadingMessage, decodeSensorMessage } from "../../src/domain/Message.ts"
import { Sensor } from "../../src/domain/Sensor.ts"
import { maxMetricMagnitude, maxMetricsPerReading } from "../../src/domain/Reading.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("decodeReadingMessage", () => {
  it("decodes the original example", () => {
    const result = decodeReadingMessage(bytes(`[{"ts": 1646409307, "sensor_id": 1, "temperature":30, "cpu":20}]`))
    expect(result).toEqual(
      Either.right({
        readings: [{ time: 1646409307000000, sensorId: 1, metrics: { temperature: 30, cpu: 20 } }],
        rejected: []
      })
    )
  })

  it("accepts a single reading object", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 2, "co2": 415.5}`)))
    expect(result.readings).toEqual([{ time: 1646409307000000, sensorId: 2, metrics: { co2: 415.5 } }])
  })

  it("keeps the valid readings beside an invalid one", () => {
    const result = Either.getOrThrow(
      decodeReadingMessage(bytes(`[{"ts": 1646409307, "sensor_id": 1, "cpu": 1}, {"ts": 1646409308, "sensor_id": -4, "cpu": 2}]`))
    )
    expect(result.readings).toHaveLength(1)
    expect(result.rejected).toHaveLength(1)
    expect(result.rejected[0]?.index).toBe(1)
    expect(result.rejected[0]?.error.message).toBe(
      `invalid reading: field "sensor_id" = -4: expected a non-negative integer`
    )
  })

  it("leaves out a metric whose value is null", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 1, "cpu": null, "temperature": 3}`)))
    expect(result.readings[0]?.metrics).toEqual({ temperature: 3 })
  })

  it("rejects a string metric and names it", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 1, "cpu": "21.5"}`)))
    expect(result.rejected[0]?.error.field).toBe("cpu")
    expect(result.rejected[0]?.error.value).toBe(`"21.5"`)
  })

  it("rejects sensor_id given as a string", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": "7", "cpu": 1}`)))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.field).toBe("sensor_id")
    expect(result.rejected[0]?.error.value).toBe(`"7"`)
    expect(result.rejected[0]?.error.reason).toBe("expected a non-negative integer")
  })

  it("decodes an integer and a fraction of one metric alike", () => {
    const result = Either.getOrThrow(
      decodeReadingMessage(bytes(`[{"ts": 1646409307, "sensor_id": 1, "temperature": 30}, {"ts": 1646409308, "sensor_id": 1, "temperature": 30.5}]`))
    )
    expect(result.readings.map((reading) => reading.metrics)).toEqual([{ temperature: 30 }, { temperature: 30.5 }])
  })

  it.each([
    [1646409307, 1646409307000000],
    [1646409307123, 1646409307123000],
    [1646409307123456, 1646409307123456],
    [1646409307.5, 1646409307500000]
  ])("reads ts %s by its magnitude", (ts, micros) => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(JSON.stringify({ ts, sensor_id: 1, cpu: 1 }))))
    expect(result.readings[0]?.time).toBe(micros)
  })

  it("rejects ts 99999999999999, the year 5138 in milliseconds", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 99999999999999, "sensor_id": 1, "cpu": 1}`)))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.field).toBe("ts")
    expect(result.rejected[0]?.error.reason).toContain("5138")
  })

  it("rejects 1e999, which JSON parses to Infinity", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 1, "cpu": 1e999}`)))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.reason).toBe("expected a finite number or null")
    expect(result.rejected[0]?.error.value).toBe("Infinity")
  })

  it.each([1e290, -1e290, 0, 5e-324])("accepts the value %s, within the magnitude bound", (value) => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 600, "temperature": ${value}}`)))
    expect(result.rejected).toEqual([])
    expect(result.readings[0]?.metrics).toEqual({ temperature: value })
  })

  it.each([
    ["1.1e290", "1.1e+290"],
    ["-1e300", "-1e+300"],
    ["1e308", "1e+308"],
    ["1.7976931348623157e308", "1.7976931348623157e+308"]
  ])("rejects %s, above the magnitude bound", (text, shown) => {
    const result = Either.getOrThrow(
      decodeReadingMessage(bytes(`[{"ts": 1646409307, "sensor_id": 600, "temperature": ${text}}, {"ts": 1646409307, "sensor_id": 600, "cpu": 1}]`))
    )
    expect(result.readings).toEqual([{ time: 1646409307000000, sensorId: 600, metrics: { cpu: 1 } }])
    expect(result.rejected).toHaveLength(1)
    expect(result.rejected[0]?.index).toBe(0)
    expect(result.rejected[0]?.error.message).toBe(
      `invalid reading: field "temperature" = ${shown}: expected a magnitude of at most 1e+290, so that sums of the values stay finite`
    )
  })

  it("keeps the magnitude bound low enough for 1.7e18 values to sum", () => {
    expect(maxMetricMagnitude).toBe(1e290)
    expect(Number.isFinite(maxMetricMagnitude * 1.7e18)).toBe(true)
  })

  it("names an empty metric name as the field", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 500, "": 5}`)))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.field).toBe("")
    expect(result.rejected[0]?.error.message).toBe(
      `invalid reading: field "" = 5: invalid metric name: expected 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or '_'`
    )
  })

  it("names no field when the element is not an object", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`[5]`)))
    expect(result.rejected[0]?.error.field).toBeUndefined()
    expect(result.rejected[0]?.error.message).toBe("invalid reading 5: expected a JSON object")
  })

  it("names the maximum for a sensor_id above the safe integers", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 18446744073709551616, "cpu": 1}`)))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.field).toBe("sensor_id")
    expect(result.rejected[0]?.error.reason).toBe(
      "expected a non-negative integer of at most 9007199254740991 (Number.MAX_SAFE_INTEGER)"
    )
  })

  it("accepts sensor_id 9007199254740991, the largest safe integer", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 9007199254740991, "cpu": 1}`)))
    expect(result.readings[0]?.sensorId).toBe(Number.MAX_SAFE_INTEGER)
  })

  it("stores a field named __proto__ as a metric", () => {
    const result = Either.getOrThrow(decodeReadingMessage(bytes(`{"ts": 1646409307, "sensor_id": 1, "__proto__": 5, "cpu": 6}`)))
    expect(Object.entries(result.readings[0]!.metrics)).toEqual([["__proto__", 5], ["cpu", 6]])
  })

  it("rejects a reading with more metrics than allowed", () => {
    const fields = Object.fromEntries(Array.from({ length: maxMetricsPerReading + 1 }, (_, index) => [`m${index}`, index]))
    const result = Either.getOrThrow(decodeReadingMessage(bytes(JSON.stringify({ ts: 1646409307, sensor_id: 1, ...fields }))))
    expect(result.readings).toHaveLength(0)
    expect(result.rejected[0]?.error.reason).toBe(`a reading may carry at most ${maxMetricsPerReading} metrics`)
  })

  it.each([
    ["nan", "not valid JSON"],
    ["", "no value"],
    ["42", "expected a JSON array of readings or one reading object"]
  ])("fails the whole record %j", (text, reason) => {
    const result = decodeReadingMessage(text === "" ? null : bytes(text))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain(reason)
  })

  it("fails invalid UTF-8", () => {
    const result = decodeReadingMessage(new Uint8Array([0x5b, 0xff, 0x5d]))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("the value is not valid UTF-8")
  })
})

describe("decodeSensorMessage", () => {
  it("decodes a sensor and defaults missing labels to empty", () => {
    const sensor = Either.getOrThrow(decodeSensorMessage(bytes(`{"id": 7, "type": "thermo"}`)))
    expect({ ...sensor }).toEqual({ id: 7, type: "thermo", location: "" })
  })

  it("rejects a location longer than 50 characters and names the field", () => {
    const result = decodeSensorMessage(bytes(JSON.stringify({ id: 7, location: "x".repeat(51) })))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toContain("location")
  })

  it("accepts 50 characters outside the Basic Multilingual Plane", () => {
    const label = "\u{1F321}".repeat(50)
    const sensor = Either.getOrThrow(decodeSensorMessage(bytes(JSON.stringify({ id: 7, type: label }))))
    expect(sensor.type).toBe(label)
  })

  it.each([
    [`{"id": 500, "type": 5}`, `field "type" = 5: expected a string of at most 50 characters`],
    [`{"id": 7, "location": ["hall"]}`, `field "location" = ["hall"]: expected a string of at most 50 characters`],
    [`{"id": 7, "type": null}`, `field "type" = null: expected a string of at most 50 characters`],
    [JSON.stringify({ id: 7, type: "t".repeat(62) }), `field "type" = "${"t".repeat(62)}": expected at most 50 characters, got 62`],
    [`{"id": 7, "location": "a\\u0000b"}`, `field "location" = "a\\u0000b": contains the character U+0000, which PostgreSQL text cannot store`],
    [`[{"id": 600}]`, `expected one JSON object with "id", "type" and "location", got [{"id":600}]`],
    [`{"type": "thermo"}`, `field "id" is missing: expected a non-negative integer`],
    [`{"id": "7"}`, `field "id" = "7": expected a non-negative integer`],
    [`{"id": -1}`, `field "id" = -1: expected a non-negative integer`],
    [`{"id": 18446744073709551616}`, `field "id" = 18446744073709552000: expected a non-negative integer of at most 9007199254740991 (Number.MAX_SAFE_INTEGER)`],
    [`{"id": 7.5, "type": 5}`, `field "id" = 7.5: expected a non-negative integer; field "type" = 5: expected a string of at most 50 characters`]
  ])("rejects %s with a one-line reason", (text, reason) => {
    const result = decodeSensorMessage(bytes(text))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.reason).toBe(reason)
      expect(result.left.message).toBe(`invalid message on logger.sensor.instance: ${reason}`)
    }
  })
})

describe("Sensor schema", () => {
  it.each([
    [{ id: 7, type: "a".repeat(51) }, "expected at most 50 characters, got 51"],
    [{ id: 7, location: "a\u0000b" }, "contains the character U+0000, which PostgreSQL text cannot store"]
  ])("rejects the labels decodeSensorMessage rejects: %j", (input, reason) => {
    const result = Schema.decodeUnknownEither(Sensor)(input)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(ParseResult.TreeFormatter.formatErrorSync(result.left)).toContain(reason)
  })
})
