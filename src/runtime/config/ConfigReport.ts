/**
 * The one message a process prints when its configuration is wrong: every invalid or missing
 * variable, with its value (secrets redacted) and what was expected.
 *
 * @module
 */
import { Config, ConfigError, Effect, Option } from "effect"
import { displayValue } from "../Redaction.ts"

/** One invalid or missing variable. */
export interface ConfigProblem {
  readonly variable: string
  /** The value as it may be shown, with secrets redacted, or undefined when the variable is not set. */
  readonly value: string | undefined
  readonly message: string
}

interface Leaf {
  readonly kind: "invalid" | "missing" | "other"
  readonly path: ReadonlyArray<string>
  readonly message: string
}

/**
 * Joins a path to the variable name. `Config.mapOrFail` prefixes the path of the error it
 * returns with the variable's own, so a reader that names its variable in the error (as the
 * readers here do) yields the name twice, and repeated neighbours are collapsed.
 */
const variableName = (path: ReadonlyArray<string>): string =>
  path.filter((segment, index) => index === 0 || segment !== path[index - 1]).join("_")

const leaves = (error: ConfigError.ConfigError): Array<Leaf> => {
  switch (error._op) {
    case "And":
    case "Or":
      return [...leaves(error.left), ...leaves(error.right)]
    case "InvalidData":
      return [{ kind: "invalid", path: error.path, message: error.message }]
    case "MissingData":
      return [{ kind: "missing", path: error.path, message: error.message }]
    case "SourceUnavailable":
    case "Unsupported":
      return [{ kind: "other", path: error.path, message: error.message }]
  }
}

/**
 * Lists the problems of a configuration error, reading each variable's raw value from the current
 * `ConfigProvider`. A variable reported twice (by two readers of the same setting) is listed once.
 */
export const configProblems = (error: ConfigError.ConfigError): Effect.Effect<ReadonlyArray<ConfigProblem>> =>
  Effect.gen(function*() {
    const seen = new Set<string>()
    const problems: Array<ConfigProblem> = []
    for (const leaf of leaves(error)) {
      const variable = variableName(leaf.path)
      const key = `${variable}\u0000${leaf.message}`
      if (seen.has(key)) continue
      seen.add(key)
      const raw = variable === ""
        ? Option.none<string>()
        // config-scan: reread (the failing setting's own reader declares the variable)
        : yield* Config.string(variable).pipe(Config.option, Effect.orElseSucceed(() => Option.none<string>()))
      problems.push({
        variable,
        value: Option.isSome(raw) && leaf.kind === "invalid" ? displayValue(variable, raw.value) : undefined,
        message: leaf.message
      })
    }
    return problems
  })

/** Formats one problem as `NAME="value" is invalid: expected …`, or the reader's message for a missing variable. */
export const formatConfigProblem = (problem: ConfigProblem): string => {
  if (problem.value !== undefined) return `${problem.variable}=${JSON.stringify(problem.value)} is invalid: ${problem.message}`
  if (problem.variable === "" || problem.message.includes(problem.variable)) return problem.message
  return `${problem.variable}: ${problem.message}`
}

/** Formats a configuration error as one message, one problem per line after the first. */
export const describeConfigError = (error: ConfigError.ConfigError): Effect.Effect<string> =>
  Effect.map(configProblems(error), (problems) => {
    const lines = problems.map(formatConfigProblem)
    return lines.length === 1
      ? `Invalid configuration: ${lines[0]}`
      : `Invalid configuration (${lines.length} problems):\n  ${lines.join("\n  ")}`
  })
