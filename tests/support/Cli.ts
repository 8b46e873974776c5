import { spawn } from "node:child_process"
import { join } from "node:path"

const root = join(import.meta.dirname, "../..")

/** Exit code and combined stdout and stderr of a finished CLI process. */
export interface CliResult {
  readonly code: number | null
  readonly output: string
}

/**
 * Runs `bin/sensor-logger.js` with `args` as a child process and returns its exit code and
 * output. Its environment is `env` on top of `PATH` and `HOME` only, so settings of the test
 * process do not leak in. Its stdout and stderr are pipes, not a terminal. A process still
 * running after `timeoutMs` is killed with SIGKILL.
 */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 90_000) =>
  new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/sensor-logger.js", ...args], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const chunks: Array<string> = []
    child.stdout.on("data", (chunk) => chunks.push(String(chunk)))
    child.stderr.on("data", (chunk) => chunks.push(String(chunk)))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", reject)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, output: chunks.join("") })
    })
  })
