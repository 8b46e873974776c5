/**
 * Removal of secrets from text that leaves the process: log lines and configuration errors. Two
 * mechanisms work together. Patterns catch credentials in any text (the password of a
 * `scheme://user:password@host` URL, `password=…` pairs), and the configured secret values
 * themselves are replaced wherever they occur, for example inside a driver's error message.
 *
 * @module
 */
import { Config, Effect, Option } from "effect"

/** Marks where a secret was removed. */
export const redactedMarker = "***"

/** Variables that contain a URL whose password must not be shown. */
export const urlSecretVariables: ReadonlySet<string> = new Set(["DATABASE_URL", "QUERY_DATABASE_URL"])

/** Variables whose whole value is secret. */
export const opaqueSecretVariables: ReadonlySet<string> = new Set([
  "KAFKA_SASL_PASSWORD",
  "OTEL_EXPORTER_OTLP_HEADERS"
])

// The userinfo runs to the last "@" before the host, so an unencoded "@" inside a password
// is covered too.
const urlPassword = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):[^\s/?#]*@/gi
const passwordPair = /\b((?:ssl)?pass(?:word|wd)?|pwd|sasl[._]?password)=([^&\s"',;]*)/gi
const passwordProperty = /("(?:ssl)?pass(?:word|wd)?"\s*:\s*)"(?:[^"\\]|\\.)*"/gi

/** Replaces URL passwords and `password=` pairs in `text` by the marker. */
export const redactCredentialPatterns = (text: string): string =>
  text
    .replace(urlPassword, `$1:${redactedMarker}@`)
    .replace(passwordPair, `$1=${redactedMarker}`)
    .replace(passwordProperty, `$1"${redactedMarker}"`)

/**
 * Secret values shorter than this are not searched for in log text, because replacing every
 * occurrence of a two-letter word would garble the logs. The patterns above still apply.
 */
export const minimumSecretLength = 4

/** Builds the function that redacts patterns and the given secret values from a text. */
export const makeRedactor = (secrets: Iterable<string>): (text: string) => string => {
  // Sorted by length, longest first, so a secret that contains another is replaced whole.
  const values = [...new Set(secrets)].filter((secret) => secret.length >= minimumSecretLength)
    .sort((a, b) => b.length - a.length)
  return (text) => {
    let result = redactCredentialPatterns(text)
    for (const secret of values) {
      if (result.includes(secret)) result = result.split(secret).join(redactedMarker)
    }
    return result
  }
}

/** Returns the value of a variable as it may be shown in an error message. */
export const displayValue = (variable: string, value: string): string =>
  opaqueSecretVariables.has(variable)
    ? `(${value.length} characters, redacted)`
    : urlSecretVariables.has(variable)
    ? redactCredentialPatterns(value)
    : value

const decodeOrKeep = (text: string) => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Returns the password of a URL, as written and decoded; nothing when it has none or does not parse. */
const urlPasswords = (text: string): Array<string> => {
  try {
    const password = new URL(text.trim()).password
    return password === "" ? [] : [password, decodeOrKeep(password)]
  } catch {
    return []
  }
}

/** Returns the values of `name=value,…` pairs (the OTLP headers format), as written and decoded. */
const pairValues = (text: string): Array<string> =>
  text.split(",").flatMap((pair) => {
    const index = pair.indexOf("=")
    if (index < 0) return []
    const value = pair.slice(index + 1).trim()
    return value === "" ? [] : [value, decodeOrKeep(value)]
  })

/**
 * Reads the secret values of the process's configuration: the passwords in `DATABASE_URL` and
 * `QUERY_DATABASE_URL`, `KAFKA_SASL_PASSWORD`, and the values of `OTEL_EXPORTER_OTLP_HEADERS`.
 * Unset or unreadable variables contribute nothing; their own readers report them.
 */
export const configuredSecrets: Effect.Effect<ReadonlyArray<string>> = Effect.gen(function*() {
  const read = (name: string) =>
    // config-scan: reread (each variable is declared by the reader of its setting)
    Config.string(name).pipe(Config.option, Effect.orElseSucceed(() => Option.none<string>()), Effect.map(Option.getOrUndefined))
  const secrets: Array<string> = []
  for (const name of urlSecretVariables) {
    const value = yield* read(name)
    if (value !== undefined) secrets.push(...urlPasswords(value))
  }
  const saslPassword = yield* read("KAFKA_SASL_PASSWORD")
  if (saslPassword !== undefined && saslPassword !== "") secrets.push(saslPassword)
  const headers = yield* read("OTEL_EXPORTER_OTLP_HEADERS")
  if (headers !== undefined) secrets.push(...pairValues(headers))
  return secrets
})
