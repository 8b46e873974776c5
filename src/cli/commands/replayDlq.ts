import process from "node:process"
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Config, Console, Data, Effect, Layer, Option } from "effect"
import { InvalidMessage, InvalidReading } from "../../domain/errors.ts"
import { readingsTopic } from "../../domain/Message.ts"
import { writeRejectedTag } from "../../ingest/DeadLetter.ts"
import { replayDeadLetters, type ReplaySummary } from "../../ingest/DeadLetterReplay.ts"
import { KafkaProducer } from "../../runtime/kafka/KafkaProducer.ts"
import { KafkaForTools } from "../Layers.ts"
import { commandSettings, serviceNames, validateSettings } from "../Settings.ts"

/** A `replay-dlq` option with a value it cannot use. */
export class InvalidReplayOption extends Data.TaggedError("InvalidReplayOption")<{
  readonly option: string
  readonly value: string
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid --${this.option} ${this.value}: ${this.reason}`
  }
}

/**
 * Every `dlq.error.tag` the ingest job writes: the decoding errors of a message or a reading, and
 * the tag of a record whose values the database rejected.
 */
export const deadLetterErrorTags: ReadonlyArray<string> = [InvalidMessage._tag, InvalidReading._tag, writeRejectedTag]

const checkErrorTag = (tag: string) =>
  deadLetterErrorTags.includes(tag)
    ? Effect.succeed(tag)
    : Effect.fail(
      ValidationError.invalidValue(
        HelpDoc.p(`Invalid --error-tag ${JSON.stringify(tag)}: expected one of ${deadLetterErrorTags.join(", ")}`)
      )
    )

const options = {
  topic: Options.text("topic").pipe(
    Options.optional,
    Options.withDescription(
      "Source topic whose dead letters to replay; they are read from this topic's name plus INGEST_DEAD_LETTER_SUFFIX. " +
        `Default: KAFKA_READINGS_TOPIC, or ${readingsTopic}`
    )
  ),
  errorTag: Options.text("error-tag").pipe(
    Options.withPseudoName("tag"),
    Options.repeated,
    Options.mapEffect((tags) => Effect.forEach(tags, checkErrorTag)),
    // Options.optional only puts the option in brackets in the synopsis: no --error-tag means every tag either way.
    Options.optional,
    Options.withDescription(
      `Replay only dead letters with this dlq.error.tag, one of ${deadLetterErrorTags.join(", ")}. Repeat it for several. Default: every tag`
    )
  ),
  partition: Options.integer("partition").pipe(
    Options.optional,
    Options.withDescription("Replay only dead letters from this partition of the source topic (dlq.source.partition)")
  ),
  fromOffset: Options.integer("from-offset").pipe(
    Options.optional,
    Options.withDescription("Replay only dead letters whose source offset (dlq.source.offset) is at least this")
  ),
  toOffset: Options.integer("to-offset").pipe(
    Options.optional,
    Options.withDescription("Replay only dead letters whose source offset (dlq.source.offset) is at most this")
  ),
  group: Options.text("group").pipe(
    Options.optional,
    Options.withDescription(
      "Consumer group that records how far the dead letters were replayed. Dead letters the filter leaves out count as " +
        "read for this group, so use another group to replay them later. Default: KAFKA_GROUP_ID plus .replay-dlq"
    )
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("Count what would be replayed, without producing or committing anything")
  )
}

const nonNegative = (option: string, value: Option.Option<number>) =>
  Option.isSome(value) && (!Number.isSafeInteger(value.value) || value.value < 0)
    ? Effect.fail(new InvalidReplayOption({ option, value: String(value.value), reason: "expected an integer of at least 0" }))
    : Effect.void

/** Width of the label column of the summary, in characters. */
const labelWidth = 17

/**
 * Formats the summary as one `label  value` line each. Labels are padded to `labelWidth`, so the
 * values line up, and a longer label, such as a long topic name, is followed by two spaces.
 */
export const formatSummary = (summary: ReplaySummary, deadLetterTopic: string): string => {
  const rows: Array<readonly [string, string | number]> = [
    ["deadLetterTopic", deadLetterTopic],
    ["scanned", summary.scanned],
    [summary.dryRun ? "wouldReplay" : "replayed", summary.replayed],
    ...Object.entries(summary.byTopic).map(([topic, count]) => [`  to ${topic}`, count] as const),
    ["skipped", summary.skipped],
    ["invalid", summary.invalid],
    ["dryRun", String(summary.dryRun)]
  ]
  return rows.map(([label, value]) => `${label.padEnd(Math.max(labelWidth, label.length + 2))}${value}`).join("\n")
}

/**
 * Tells whether `argv` has `--error-tag` with an empty value or none. @effect/cli 0.77 reads
 * those the same as no `--error-tag`, which replays every tag, so `--error-tag "$TAG"` with `TAG`
 * unset would replay everything.
 */
export const hasEmptyErrorTag = (argv: ReadonlyArray<string>): boolean =>
  argv.some((arg, index) => {
    if (arg === "--error-tag=") return true
    if (arg !== "--error-tag") return false
    const value = argv[index + 1]
    return value === undefined || value.trim() === "" || value.startsWith("-")
  })

/**
 * `sensor-logger replay-dlq`: re-publishes dead letters to their source topics after the cause
 * was fixed, and prints a summary. It reads `KAFKA_BROKERS` (default 127.0.0.1:9092),
 * `KAFKA_READINGS_TOPIC`, `KAFKA_GROUP_ID` and `INGEST_DEAD_LETTER_SUFFIX` like the ingest job.
 */
export const replayDlqCommand = Command.make("replay-dlq", options, (args) =>
  Effect.gen(function*() {
    yield* validateSettings(commandSettings.tools(serviceNames.replayDlq))
    if (hasEmptyErrorTag(process.argv)) {
      return yield* Effect.fail(
        new InvalidReplayOption({ option: "error-tag", value: '""', reason: `expected one of ${deadLetterErrorTags.join(", ")}` })
      )
    }
    yield* nonNegative("partition", args.partition)
    yield* nonNegative("from-offset", args.fromOffset)
    yield* nonNegative("to-offset", args.toOffset)
    if (Option.isSome(args.fromOffset) && Option.isSome(args.toOffset) && args.fromOffset.value > args.toOffset.value) {
      return yield* Effect.fail(
        new InvalidReplayOption({
          option: "to-offset",
          value: String(args.toOffset.value),
          reason: `must not be below --from-offset ${args.fromOffset.value}`
        })
      )
    }
    const topic = Option.isSome(args.topic)
      ? args.topic.value
      : yield* Config.string("KAFKA_READINGS_TOPIC").pipe(Config.withDefault(readingsTopic))
    const suffix = yield* Config.string("INGEST_DEAD_LETTER_SUFFIX").pipe(Config.withDefault(".dlq"))
    const ingestGroup = yield* Config.string("KAFKA_GROUP_ID").pipe(Config.withDefault("logger.job"))
    const deadLetterTopic = `${topic}${suffix}`
    const summary = yield* replayDeadLetters({
      deadLetterTopic,
      groupId: Option.getOrElse(args.group, () => `${ingestGroup}.replay-dlq`),
      errorTags: Option.getOrElse(args.errorTag, () => []),
      sourcePartition: args.partition,
      fromOffset: Option.map(args.fromOffset, BigInt),
      toOffset: Option.map(args.toOffset, BigInt),
      dryRun: args.dryRun
    }).pipe(Effect.provide(KafkaProducer.layer.pipe(Layer.provideMerge(KafkaForTools))))
    yield* Console.log(formatSummary(summary, deadLetterTopic))
  })
).pipe(Command.withDescription("Re-publish dead letters to the topics they came from, after the cause was fixed"))
