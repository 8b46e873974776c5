import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "vitest"
import { KafkaError } from "../../src/runtime/kafka/KafkaError.ts"
import { classifyWriteFailure, describeFailure, sqlStateOf } from "../../src/ingest/WriteFailure.ts"

/** A `SqlError` as @effect/sql-pg raises it, around a driver error with `code`. */
const sqlError = (code: string, message = "failed") =>
  new SqlError({ message: "Failed to execute statement", cause: Object.assign(new Error(message), { code }) })

describe("classifyWriteFailure", () => {
  it.each([
    ["08006", "transient"], // connection_failure
    ["08001", "transient"], // sqlclient_unable_to_establish_sqlconnection
    ["53300", "transient"], // too_many_connections
    ["53100", "transient"], // disk_full
    ["57P01", "transient"], // admin_shutdown
    ["57P03", "transient"], // cannot_connect_now
    ["40001", "transient"], // serialization_failure
    ["40P01", "transient"], // deadlock_detected
    ["55P03", "transient"], // lock_not_available
    ["22003", "data"], // numeric_value_out_of_range
    ["22021", "data"], // character_not_in_repertoire
    ["22P02", "data"], // invalid_text_representation
    ["23514", "data"], // check_violation
    ["23505", "data"], // unique_violation
    ["54000", "data"], // program_limit_exceeded
    ["42P01", "persistent"], // undefined_table
    ["42501", "persistent"], // insufficient_privilege
    ["XX000", "persistent"] // internal_error
  ])("classifies SQLSTATE %s as %s", (code, expected) => {
    expect(classifyWriteFailure(sqlError(code))).toBe(expected)
  })

  it.each(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"])("classifies %s as transient", (code) => {
    const cause = Object.assign(new Error(`connect ${code} 127.0.0.1:5432`), { code })
    expect(classifyWriteFailure(new SqlError({ message: "Failed to acquire connection", cause }))).toBe("transient")
  })

  it("classifies a connection that pg saw end as transient", () => {
    const cause = new Error("Connection terminated unexpectedly")
    expect(classifyWriteFailure(new SqlError({ message: "Failed to execute statement", cause }))).toBe("transient")
  })

  it("classifies a retriable Kafka error as transient", () => {
    const cause = Object.assign(new Error("There is no leader for this topic-partition"), {
      name: "KafkaJSProtocolError",
      type: "LEADER_NOT_AVAILABLE",
      retriable: true
    })
    expect(classifyWriteFailure(new KafkaError({ operation: "send to t.dlq", cause }))).toBe("transient")
  })

  it("looks through kafkajs's retries-exceeded wrapper", () => {
    const original = Object.assign(new Error("Request timed out"), { type: "REQUEST_TIMED_OUT", retriable: true })
    const wrapper = Object.assign(new Error("Request timed out"), { name: "KafkaJSNumberOfRetriesExceeded", retriable: false, cause: original })
    expect(classifyWriteFailure(new KafkaError({ operation: "send to t.dlq", cause: wrapper }))).toBe("transient")
  })

  it("classifies a non-retriable Kafka error as persistent", () => {
    const cause = Object.assign(new Error("Not authorized to access topics"), { type: "TOPIC_AUTHORIZATION_FAILED", retriable: false })
    expect(classifyWriteFailure(new KafkaError({ operation: "send to t.dlq", cause }))).toBe("persistent")
  })

  it("classifies an error without any code as persistent", () => {
    expect(classifyWriteFailure(new Error("something else"))).toBe("persistent")
  })
})

describe("describeFailure", () => {
  it("shows the database's message and SQLSTATE", () => {
    const error = sqlError("23514", `new row for relation "sensor_data" violates check constraint "value_range"`)
    expect(sqlStateOf(error)).toBe("23514")
    expect(describeFailure(error)).toBe(
      `Failed to execute statement: new row for relation "sensor_data" violates check constraint "value_range" (SQLSTATE 23514)`
    )
  })

  it("does not repeat the cause a Kafka error already names", () => {
    const error = new KafkaError({ operation: "send to t.dlq", cause: new Error("broker down") })
    expect(describeFailure(error)).toBe("Kafka send to t.dlq failed: broker down")
  })
})
