import { Schema } from "effect"

/** A reading that cannot be stored; `field` and `value` name what was wrong (`field` is "" for the reading itself). */
export class InvalidReading extends Schema.TaggedError<InvalidReading>()("InvalidReading", {
  field: Schema.String,
  value: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return this.field === ""
      ? `invalid reading ${this.value}: ${this.reason}`
      : `invalid reading: field "${this.field}" = ${this.value}: ${this.reason}`
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
