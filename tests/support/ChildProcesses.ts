/**
 * Child processes of `node bin/sensor-logger.js …` for process-level tests: each one runs with
 * JSON logs, so a test can wait for a log line, and a `ProcessGroup` kills whatever a test left
 * running.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const REPOSITORY = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")
const BIN = Path.join(REPOSITORY, "bin/sensor-logger.js")

/** One line of `LOG_FORMAT=json` output. Lines that are not JSON (a crash trace, say) have `level` "raw". */
export interface LogLine {
  /** The line's `timestamp`, or the time it was read for a line that is not JSON. */
  readonly timestamp: string
  readonly message: string
  readonly level: string
  readonly annotations: Readonly<Record<string, unknown>>
  /** The rendered cause of an error line, or "". */
  readonly cause: string
}

/** How a child process ended. */
export interface ProcessExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

const parseLogLine = (text: string): LogLine => {
  try {
    const parsed = JSON.parse(text) as {
      message?: unknown
      logLevel?: unknown
      annotations?: unknown
      timestamp?: unknown
      cause?: unknown
    }
    return {
      timestamp: typeof parsed.timestamp === "string" ? parsed.timestamp : new Date().toISOString(),
      message: Array.isArray(parsed.message) ? parsed.message.map(String).join(" ") : String(parsed.message),
      level: String(parsed.logLevel),
      annotations: typeof parsed.annotations === "object" && parsed.annotations !== null
        ? parsed.annotations as Record<string, unknown>
        : {},
      cause: typeof parsed.cause === "string" ? parsed.cause : ""
    }
  } catch {
    return { timestamp: new Date().toISOString(), message: text, level: "raw", annotations: {}, cause: "" }
  }
}

/**
 * Settings every child gets: JSON logs at info level, and only the variables a Node.js process
 * needs from the test's environment, so a `DATABASE_URL` or `KAFKA_BROKERS` of the developer's
 * shell never reaches a child.
 */
const baseEnvironment = (): Record<string, string> => {
  const inherited: Record<string, string> = {}
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG", "TZ"]) {
    const value = process.env[name]
    if (value !== undefined) inherited[name] = value
  }
  return { ...inherited, LOG_FORMAT: "json", LOG_LEVEL: "info" }
}

/** A running `sensor-logger` command and everything it printed. */
export class SensorLoggerProcess {
  readonly name: string
  readonly lines: Array<LogLine> = []
  readonly exited: Promise<ProcessExit>
  readonly #child: ChildProcess
  #exit: ProcessExit | undefined
  readonly #waiters = new Set<() => void>()

  constructor(name: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) {
    this.name = name
    this.#child = spawn(process.execPath, [BIN, ...args], {
      cwd: REPOSITORY,
      env: { ...baseEnvironment(), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      let partial = ""
      stream.setEncoding("utf8")
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n")
        partial = parts.pop()!
        for (const part of parts) {
          if (part.trim() !== "") this.lines.push(parseLogLine(part))
        }
        this.#notify()
      })
    }
    this.exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        this.#exit = { code, signal }
        this.#notify()
        resolve(this.#exit)
      })
    })
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#exit === undefined
  }

  /** Returns the last `count` lines of output, for failure messages. */
  tail(count = 25): string {
    return this.lines.slice(-count).map((line) =>
      `  ${line.timestamp} [${this.name}] ${line.level} ${line.message} ${JSON.stringify(line.annotations)}${
        line.cause === "" ? "" : `\n    ${line.cause.split("\n").slice(0, 8).join("\n    ")}`
      }`
    ).join("\n")
  }

  /**
   * Resolves with the first log line that satisfies `matches`, including lines printed before the
   * call. Rejects when the process exits first or after `timeoutMs`.
   */
  waitForLog(matches: (line: LogLine) => boolean, description: string, timeoutMs = 60_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(matches)
        if (found !== undefined) {
          finish()
          resolve(found)
        } else if (this.#exit !== undefined) {
          finish()
          reject(new Error(`${this.name} exited (${JSON.stringify(this.#exit)}) before logging ${description}\n${this.tail()}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`${this.name} did not log ${description} within ${timeoutMs} ms\n${this.tail()}`))
      }, timeoutMs)
      const finish = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
      }
      this.#waiters.add(check)
      check()
    })
  }

  /** Sends `signal` to the process, if it still runs. */
  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal)
  }

  /** Sends SIGTERM and waits for the exit; sends SIGKILL when the process is still running after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<ProcessExit> {
    this.kill("SIGTERM")
    const timer = setTimeout(() => this.kill("SIGKILL"), timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }
}

/** The child processes of one test. `killAll` belongs in `afterEach`. */
export class ProcessGroup {
  readonly #processes: Array<SensorLoggerProcess> = []

  /** Starts `node bin/sensor-logger.js ...args` with `env` on top of the base environment. */
  start(name: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): SensorLoggerProcess {
    const child = new SensorLoggerProcess(name, args, env)
    this.#processes.push(child)
    return child
  }

  /** Returns the output tails of every process started, for failure messages. */
  tails(count = 15): string {
    return this.#processes.map((child) => child.tail(count)).join("\n")
  }

  /** Kills (SIGKILL) every process that still runs and waits for them to exit. */
  async killAll(): Promise<void> {
    const running = this.#processes.filter((child) => child.running)
    for (const child of running) child.kill("SIGKILL")
    await Promise.all(running.map((child) => child.exited))
    this.#processes.length = 0
  }
}
