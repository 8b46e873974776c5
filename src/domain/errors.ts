import { Schema } from "effect"

/**
 * A reading that cannot be stored, with the `field` and `value` that were wrong. `field` is absent
 * when the reading as a whole was wrong, and is "" for a metric with an empty name.
 */
export class InvalidReading extends Schema.TaggedError<InvalidReading>()("InvalidReading", {
  field: Schema.optional(Schema.String),
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return this.field === undefined
      ? `invalid reading ${this.value}: ${this.reason}`
      : `invalid reading: field ${JSON.stringify(this.field)} = ${this.value}: ${this.reason}`
  }
}

/** A Kafka record whose bytes cannot be decoded at all (not UTF-8 JSON, or not the expected shape). */
export class InvalidMessage extends Schema.TaggedError<InvalidMessage>()("InvalidMessage", {
  topic: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid message on ${this.topic}: ${this.reason}`
  }
}
