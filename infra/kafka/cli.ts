/**
 * Command line of the local Kafka broker: `node --import tsx/esm infra/kafka/cli.ts <command>`.
 * `resolve` downloads the jars (CI runs it while installing), and `start` runs a broker in the foreground.
 */
import * as path from "node:path"
import process from "node:process"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { LocalKafkaError, resolveClasspath, startLocalKafka } from "./LocalKafka.ts"

const defaultDataDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "target", "data")

const usage = `usage: node --import tsx/esm infra/kafka/cli.ts <command> [options]

Commands:
  resolve            Download the broker jars with Maven into ~/.m2 and cache the classpath
                     in infra/kafka/target/classpath.txt.
  start [options]    Run a single-node Kafka broker on 127.0.0.1 until Ctrl-C or SIGTERM.
                     Prints KAFKA_BROKERS=<host:port> on stdout once clients can connect.

Options of start:
  --port N             Client port; 0 picks a free port (default 9092)
  --controller-port N  KRaft controller port; 0 picks a free port (default 0)
  --data-dir DIR       Broker storage, formatted on first use
                       (default infra/kafka/target/data)
  --heap-mb N          Maximum JVM heap in MiB (default 512)
  --log                Print broker output to stderr instead of appending it to DIR/broker.log

  -h, --help           Show this text
`

class UsageError extends Error {}

const parseInteger = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(text)}`)
  return Number(text)
}

const runResolve = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parseArgs({ args: [...args], options: { help: { type: "boolean", short: "h" } }, strict: true })
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  const started = Date.now()
  const jars = await resolveClasspath({ onLog: (line) => process.stderr.write(`${line}\n`) })
  process.stderr.write(`Classpath of ${jars.length} jars ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  return 0
}

const runStart = async (args: ReadonlyArray<string>): Promise<number> => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      "port": { type: "string" },
      "controller-port": { type: "string" },
      "data-dir": { type: "string" },
      "heap-mb": { type: "string" },
      "log": { type: "boolean" },
      "help": { type: "boolean", short: "h" }
    },
    strict: true
  })
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }

  const dataDir = path.resolve(values["data-dir"] ?? defaultDataDir)
  const port = parseInteger("port", values.port, 9092)
  const controllerPort = parseInteger("controller-port", values["controller-port"], 0)
  const heapMb = parseInteger("heap-mb", values["heap-mb"], 512)
  const started = Date.now()
  process.stderr.write(`Starting Kafka broker with data directory ${dataDir}\n`)
  const broker = await startLocalKafka({
    dataDir,
    port,
    controllerPort,
    heapMb,
    ...(values.log === true ? { onLog: (line: string) => process.stderr.write(`${line}\n`) } : {})
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  process.stderr.write(
    `Kafka broker ready in ${seconds} s: pid ${broker.pid}, cluster id ${broker.clusterId}, controller port ${broker.controllerPort}. Press Ctrl-C to stop.\n`
  )
  process.stdout.write(`KAFKA_BROKERS=${broker.brokers.join(",")}\n`)

  return new Promise<number>((resolve) => {
    let signalCount = 0
    const onSignal = (signal: NodeJS.Signals) => {
      signalCount++
      if (signalCount > 1) {
        // The 'exit' listener of LocalKafka.ts kills the broker with SIGKILL.
        process.stderr.write(`Received ${signal} again, killing the broker\n`)
        process.exit(1)
      }
      process.stderr.write(`Received ${signal}, stopping the broker (send it again to kill the broker)\n`)
      broker.stop().then(
        () => resolve(0),
        (error: unknown) => {
          process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
          resolve(1)
        }
      )
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)

    void broker.exited.then((exit) => {
      if (signalCount === 0) {
        const exitDescription = exit.signal === null ? `exit code ${exit.exitCode}` : `signal ${exit.signal}`
        process.stderr.write(`Kafka broker exited unexpectedly (${exitDescription}). Its output is in ${path.join(dataDir, "broker.log")}.\n`)
        resolve(1)
      }
    })
  })
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...rest] = argv
  switch (command) {
    case "resolve":
      return runResolve(rest)
    case "start":
      return runStart(rest)
    case "-h":
    case "--help":
      process.stdout.write(usage)
      return 0
    case undefined:
      process.stderr.write(usage)
      return 2
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`)
  }
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (error) {
  if (error instanceof UsageError || (error instanceof TypeError && "code" in error && String(error.code).startsWith("ERR_PARSE_ARGS"))) {
    process.stderr.write(`${error.message}\n\n${usage}`)
    process.exitCode = 2
  } else if (error instanceof LocalKafkaError) {
    process.stderr.write(`${error.message}\n`)
    process.exitCode = 1
  } else {
    throw error
  }
}
