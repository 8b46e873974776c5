/**
 * Local single-node Apache Kafka 4.1 broker (KRaft, broker and controller in one JVM) on
 * 127.0.0.1, for the tests and for local runs. Maven resolves the jars named in `pom.xml`
 * from Maven Central, and the broker runs as a child process of the calling Node process.
 *
 * Layout of a data directory:
 * - `server.properties`: rewritten on every start, because the ports may change.
 * - `cluster-id`: the Kafka cluster id that the storage was formatted with.
 * - `kafka-logs/`: the broker's `log.dirs`. Its `meta.properties` marks formatted storage.
 * - `broker.lock`: JSON with the owner and broker pids, present while a broker runs.
 * - `broker.log`: broker output, appended on each start unless `onLog` is given.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import process from "node:process"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { Data, Effect, type Scope } from "effect"
import { Kafka, logLevel } from "kafkajs"

// ---------------------------------------------------------------------------
// Errors

/** Kind of failure in a `LocalKafkaError`, for callers that branch on it instead of parsing the message. */
export type LocalKafkaFailure =
  | "InvalidOptions"
  | "JavaNotFound"
  | "MavenNotFound"
  | "ClasspathFailed"
  | "DataDirLocked"
  | "FormatFailed"
  | "PortInUse"
  | "BrokerExited"
  | "StartTimedOut"
  | "StartFailed"
  | "StopFailed"
  | "Aborted"

/** Failure to resolve, start or stop a local broker. `message` states what failed and what to do next. */
export class LocalKafkaError extends Data.TaggedError("LocalKafkaError")<{
  readonly reason: LocalKafkaFailure
  readonly message: string
  readonly cause?: unknown
  /** The port that was already in use, for reason "PortInUse" when the broker output names it. */
  readonly port?: number
}> {}

const failure = (reason: LocalKafkaFailure, message: string, cause?: unknown): LocalKafkaError =>
  cause === undefined ? new LocalKafkaError({ reason, message }) : new LocalKafkaError({ reason, message, cause })

const isErrnoException = (error: unknown, code: string): boolean =>
  error instanceof Error && (error as NodeJS.ErrnoException).code === code

// ---------------------------------------------------------------------------
// Files of this folder

const infraDir = path.dirname(fileURLToPath(import.meta.url))

/** `pom.xml` that lists the broker's jars. */
export const pomFile = path.join(infraDir, "pom.xml")

/** Default cache of the resolved classpath, one `path.delimiter`-separated line as Maven writes it. */
export const defaultClasspathCache = path.join(infraDir, "target", "classpath.txt")

/** Log4j2 configuration passed to the broker JVM. */
export const log4jConfigFile = path.join(infraDir, "log4j2.yaml")

const installJavaHint = "Install a Java 17 or newer runtime (for example `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
const installMavenHint = "Install Apache Maven (for example `apt-get install maven`) or pass the path of `mvn`."

// ---------------------------------------------------------------------------
// Child processes that run to completion (mvn, java -version, StorageTool)

interface CommandResult {
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  /** Interleaved stdout and stderr lines. */
  readonly lines: ReadonlyArray<string>
}

/** Runs a command to completion. Rejects with the spawn error (ENOENT when the command is missing). */
const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly cwd: string
    readonly timeoutMs: number
    readonly signal?: AbortSignal | undefined
    readonly onLine?: ((line: string) => void) | undefined
  }
): Promise<CommandResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] })
    const lines: Array<string> = []
    // Maven 3.8 prints colour resets even with -q, so escape sequences and blank lines are dropped.
    const collect = (rawLine: string) => {
      const line = rawLine.replace(/\u001b\[[0-9;]*m/g, "")
      if (line.trim() === "") return
      lines.push(line)
      options.onLine?.(line)
    }
    readline.createInterface({ input: child.stdout }).on("line", collect)
    readline.createInterface({ input: child.stderr }).on("line", collect)

    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, options.timeoutMs)
    const onAbort = () => child.kill("SIGKILL")
    options.signal?.addEventListener("abort", onAbort, { once: true })

    child.once("error", (error) => {
      clearTimeout(timer)
      options.signal?.removeEventListener("abort", onAbort)
      reject(error)
    })
    child.once("close", (exitCode, signal) => {
      clearTimeout(timer)
      options.signal?.removeEventListener("abort", onAbort)
      resolve({ exitCode, signal, timedOut, lines })
    })
  })

const lastLines = (lines: ReadonlyArray<string>, count: number): string => lines.slice(-count).join("\n")

const describeExit = (result: { readonly exitCode: number | null; readonly signal: NodeJS.Signals | null }): string =>
  result.signal === null ? `exit code ${result.exitCode}` : `signal ${result.signal}`

const throwIfAborted = (signal: AbortSignal | undefined, step: string): void => {
  if (signal?.aborted === true) {
    throw failure("Aborted", `local Kafka start was aborted during ${step}`, signal.reason)
  }
}

// ---------------------------------------------------------------------------
// Java

/** Returns the `java` command: `$JAVA_HOME/bin/java` when JAVA_HOME is set, else `java` from PATH. */
export const defaultJavaCommand = (): string => {
  const javaHome = process.env["JAVA_HOME"]
  return javaHome !== undefined && javaHome !== "" ? path.join(javaHome, "bin", "java") : "java"
}

const checkedJavaCommands = new Set<string>()

/**
 * Checks that `java` runs and is version 17 or newer, which Kafka 4.x brokers require.
 * A command that passed once is not checked again in this process.
 */
export const checkJava = async (javaCommand: string = defaultJavaCommand()): Promise<void> => {
  if (checkedJavaCommands.has(javaCommand)) return

  let result: CommandResult
  try {
    result = await runCommand(javaCommand, ["-version"], { cwd: infraDir, timeoutMs: 30_000 })
  } catch (error) {
    if (isErrnoException(error, "ENOENT")) {
      throw failure("JavaNotFound", `Java was not found (command \`${javaCommand}\`). ${installJavaHint}`, error)
    }
    throw failure("JavaNotFound", `failed to run \`${javaCommand} -version\`: ${String(error)}`, error)
  }

  const output = result.lines.join("\n")
  const version = /version "(\d+)(?:\.(\d+))?/.exec(output)
  if (result.exitCode !== 0 || version === null) {
    throw failure("JavaNotFound", `\`${javaCommand} -version\` failed (${describeExit(result)}):\n${output}`)
  }
  // Java 8 and older report "1.8.0_x".
  const major = version[1] === "1" ? Number(version[2]) : Number(version[1])
  if (major < 17) {
    throw failure("JavaNotFound", `Kafka 4.1 needs Java 17 or newer, but \`${javaCommand}\` is Java ${major}. ${installJavaHint}`)
  }
  checkedJavaCommands.add(javaCommand)
}

// ---------------------------------------------------------------------------
// Classpath

/** Options of `resolveClasspath`. */
export interface ClasspathOptions {
  /** Maven command, default `mvn` from PATH. */
  readonly mvn?: string
  /** Cache file, default `infra/kafka/target/classpath.txt`. */
  readonly cacheFile?: string
  /** Receives Maven's output lines. */
  readonly onLog?: (line: string) => void
  readonly signal?: AbortSignal
}

const readCachedClasspath = (cacheFile: string): ReadonlyArray<string> | undefined => {
  let cacheStat: fs.Stats
  try {
    cacheStat = fs.statSync(cacheFile)
  } catch {
    return undefined
  }
  if (fs.statSync(pomFile).mtimeMs > cacheStat.mtimeMs) return undefined

  const jars = fs
    .readFileSync(cacheFile, "utf8")
    .split(path.delimiter)
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
  if (jars.length === 0 || !jars.every((jar) => fs.existsSync(jar))) return undefined
  return jars
}

/**
 * Returns the broker's classpath (absolute jar paths). Reads the cache file unless it is older than
 * `pom.xml`, empty or lists a jar that no longer exists. Otherwise runs
 * `mvn dependency:build-classpath`, which downloads missing jars from Maven Central into `~/.m2`
 * (about a minute on a fresh machine), and rewrites the cache.
 */
export const resolveClasspath = async (options: ClasspathOptions = {}): Promise<ReadonlyArray<string>> => {
  const cacheFile = options.cacheFile ?? defaultClasspathCache
  const cached = readCachedClasspath(cacheFile)
  if (cached !== undefined) return cached

  const mvn = options.mvn ?? "mvn"
  fs.mkdirSync(path.dirname(cacheFile), { recursive: true })
  // Maven writes a temporary file that is renamed into place, so a concurrent reader never sees half a file.
  const temporaryFile = `${cacheFile}.${process.pid}.tmp`
  const args = ["-q", "-B", "-f", pomFile, "dependency:build-classpath", `-Dmdep.outputFile=${temporaryFile}`]

  let result: CommandResult
  try {
    result = await runCommand(mvn, args, { cwd: infraDir, timeoutMs: 10 * 60_000, signal: options.signal, onLine: options.onLog })
  } catch (error) {
    if (isErrnoException(error, "ENOENT")) {
      throw failure("MavenNotFound", `Maven was not found (command \`${mvn}\`). ${installMavenHint}`, error)
    }
    throw failure("ClasspathFailed", `failed to run \`${mvn}\`: ${String(error)}`, error)
  }
  throwIfAborted(options.signal, "classpath resolution")
  if (result.exitCode !== 0 || !fs.existsSync(temporaryFile)) {
    fs.rmSync(temporaryFile, { force: true })
    const outcome = result.timedOut ? "timed out after 10 minutes" : `failed (${describeExit(result)})`
    throw failure(
      "ClasspathFailed",
      `\`${mvn} ${args.join(" ")}\` ${outcome}. Check access to Maven Central (or the mirror in ~/.m2/settings.xml). Output:\n${lastLines(result.lines, 30)}`
    )
  }
  fs.renameSync(temporaryFile, cacheFile)

  const jars = readCachedClasspath(cacheFile)
  if (jars === undefined) {
    throw failure("ClasspathFailed", `Maven wrote an empty classpath or one with missing jars to ${cacheFile}`)
  }
  return jars
}

// ---------------------------------------------------------------------------
// Broker configuration

/** Settings that `renderServerProperties` fills into the broker configuration. */
export interface ServerPropertiesSettings {
  readonly port: number
  readonly controllerPort: number
  readonly logDirs: string
  /** Extra or replaced broker settings, written after the defaults. */
  readonly overrides?: Readonly<Record<string, string>>
}

/**
 * Renders the `server.properties` of a single-node KRaft cluster on 127.0.0.1. Internal topics
 * have one replica and one partition, because there is only one broker and a 50-partition
 * `__consumer_offsets` makes the first consumer group join slower.
 */
export const renderServerProperties = (settings: ServerPropertiesSettings): string => {
  const defaults: Record<string, string> = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.quorum.bootstrap.servers": `127.0.0.1:${settings.controllerPort}`,
    "listeners": `PLAINTEXT://127.0.0.1:${settings.port},CONTROLLER://127.0.0.1:${settings.controllerPort}`,
    "advertised.listeners": `PLAINTEXT://127.0.0.1:${settings.port}`,
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": settings.logDirs,
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0"
  }
  const entries = Object.entries({ ...defaults, ...settings.overrides })
  const lines = entries.map(([key, value]) => `${key}=${escapePropertyValue(value)}`)
  return ["# Written by infra/kafka/LocalKafka.ts on every start, so edits are overwritten.", ...lines, ""].join("\n")
}

// Java properties files treat a backslash as an escape, which matters for Windows paths.
const escapePropertyValue = (value: string): string => value.replace(/\\/g, "\\\\")

/**
 * Returns a new Kafka cluster id: 16 random bytes in unpadded URL-safe base64, the format of
 * `kafka-storage random-uuid`. Like Kafka, it avoids ids that start with "-", which a command line would read as a flag.
 */
export const randomClusterId = (): string => {
  for (;;) {
    const id = randomBytes(16).toString("base64url")
    if (!id.startsWith("-")) return id
  }
}

const readMetaClusterId = (metaFile: string): string | undefined => {
  if (!fs.existsSync(metaFile)) return undefined
  const match = /^cluster\.id=(.+)$/m.exec(fs.readFileSync(metaFile, "utf8"))
  return match?.[1]?.trim()
}

// ---------------------------------------------------------------------------
// Processes and ports

/** Returns true when a process exists and is not a zombie. The zombie check reads /proc and is skipped where /proc is missing. */
export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return isErrnoException(error, "EPERM")
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    // The state follows the parenthesised command name, which may itself contain spaces or ")".
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
    return state !== "Z"
  } catch {
    return true
  }
}

/**
 * Checks from `/proc/<pid>/cmdline` whether `pid` runs `kafka.Kafka` with this properties file.
 * Returns undefined where that file cannot be read (not Linux, or the process is gone).
 */
const isBrokerOf = (pid: number, propertiesFile: string): boolean | undefined => {
  let commandLine: ReadonlyArray<string>
  try {
    commandLine = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return undefined
  }
  return commandLine.includes("kafka.Kafka") && commandLine.includes(propertiesFile)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Settles like `promise`, or with `fallback` after `ms`. The timer is cleared either way, so it does not keep Node running. */
const withTimeout = async <A, B>(promise: Promise<A>, ms: number, fallback: B): Promise<A | B> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<B>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Sends a signal unless the process is already gone. */
const signalProcess = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(pid, signal)
  } catch (error) {
    if (!isErrnoException(error, "ESRCH")) throw error
  }
}

const waitUntilGone = async (pid: number, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (isProcessAlive(pid)) {
    if (Date.now() >= deadline) return false
    await sleep(100)
  }
  return true
}

/**
 * Returns `count` distinct free TCP ports on 127.0.0.1. The ports are free only when this returns,
 * so another process may take one before the broker binds it. `startLocalKafka` retries on that.
 */
export const findFreePorts = async (count: number): Promise<ReadonlyArray<number>> => {
  const servers: Array<net.Server> = []
  try {
    const ports: Array<number> = []
    for (let i = 0; i < count; i++) {
      const server = net.createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => resolve())
      })
      const address = server.address()
      if (address === null || typeof address === "string") throw new Error("listening socket has no TCP address")
      ports.push(address.port)
    }
    return ports
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  }
}

// Brokers started by this process, killed when the process exits without having stopped them.
const runningBrokers = new Map<ChildProcess, string>()
let exitHookInstalled = false

const killRunningBrokersOnExit = (): void => {
  for (const [child, lockFile] of runningBrokers) {
    // SIGKILL, because an 'exit' listener cannot wait for a clean shutdown. Kafka recovers its logs on the next start.
    child.kill("SIGKILL")
    fs.rmSync(lockFile, { force: true })
  }
  runningBrokers.clear()
}

const trackBroker = (child: ChildProcess, lockFile: string): void => {
  if (!exitHookInstalled) {
    process.on("exit", killRunningBrokersOnExit)
    exitHookInstalled = true
  }
  runningBrokers.set(child, lockFile)
}

// ---------------------------------------------------------------------------
// Lock file

interface LockRecord {
  readonly ownerPid: number
  readonly brokerPid?: number
  readonly port?: number
  readonly controllerPort?: number
  readonly startedAt: string
}

const parseLockRecord = (text: string): LockRecord | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === "object" && value !== null && typeof (value as LockRecord).ownerPid === "number") {
      return value as LockRecord
    }
  } catch {
    // An unreadable lock file is treated as stale.
  }
  return undefined
}

/**
 * Creates the lock file of a data directory. An existing lock is stale, and removed, when its
 * broker process is gone. A live broker whose owner process has exited is an orphan (its owner was
 * killed with SIGKILL, so no 'exit' listener ran). It is stopped when /proc confirms that it is the
 * broker of this data directory. Any other live broker makes the start fail with "DataDirLocked".
 */
const acquireLock = async (
  lockFile: string,
  propertiesFile: string,
  stopTimeoutMs: number,
  log: (line: string) => void
): Promise<void> => {
  for (let attempt = 0; attempt < 5; attempt++) {
    const record: LockRecord = { ownerPid: process.pid, startedAt: new Date().toISOString() }
    try {
      fs.writeFileSync(lockFile, JSON.stringify(record), { flag: "wx" })
      return
    } catch (error) {
      if (!isErrnoException(error, "EEXIST")) throw error
    }

    let text: string
    try {
      text = fs.readFileSync(lockFile, "utf8")
    } catch (error) {
      if (isErrnoException(error, "ENOENT")) continue
      throw error
    }
    const existing = parseLockRecord(text)
    const brokerAlive = existing?.brokerPid !== undefined && isProcessAlive(existing.brokerPid)
    const ownerAlive = existing !== undefined && isProcessAlive(existing.ownerPid)

    if (existing !== undefined && (brokerAlive || (existing.brokerPid === undefined && ownerAlive))) {
      const dataDir = path.dirname(lockFile)
      const where = existing.port === undefined ? "" : ` on 127.0.0.1:${existing.port}`
      const brokerPid = existing.brokerPid
      if (brokerPid === undefined || ownerAlive) {
        throw failure(
          "DataDirLocked",
          `data directory ${dataDir} is in use by a broker${where} (broker pid ${brokerPid ?? "not yet started"}, started by pid ${existing.ownerPid}). Stop it or use another data directory.`
        )
      }
      if (isBrokerOf(brokerPid, propertiesFile) !== true) {
        throw failure(
          "DataDirLocked",
          `data directory ${dataDir} is locked by pid ${brokerPid}, whose owner pid ${existing.ownerPid} has exited, and it cannot be confirmed to be this directory's broker. Stop that process or delete ${lockFile}.`
        )
      }
      log(`stopping orphaned broker pid ${brokerPid}${where}, left running by exited pid ${existing.ownerPid}`)
      signalProcess(brokerPid, "SIGTERM")
      if (!(await waitUntilGone(brokerPid, stopTimeoutMs))) {
        log(`orphaned broker pid ${brokerPid} did not exit within ${stopTimeoutMs} ms of SIGTERM, sending SIGKILL`)
        signalProcess(brokerPid, "SIGKILL")
        if (!(await waitUntilGone(brokerPid, 5_000))) {
          throw failure("DataDirLocked", `orphaned broker pid ${brokerPid} in ${dataDir} did not exit after SIGKILL`)
        }
      }
    }

    // NOTE: two processes that find the same stale lock at the same moment can both remove it.
    // Comparing the content just before the removal makes that rare but does not rule it out.
    try {
      if (fs.readFileSync(lockFile, "utf8") === text) fs.rmSync(lockFile, { force: true })
    } catch (error) {
      if (!isErrnoException(error, "ENOENT")) throw error
    }
  }
  throw failure("DataDirLocked", `could not create ${lockFile}: other processes keep recreating it`)
}

// ---------------------------------------------------------------------------
// Broker output

interface OutputSink {
  readonly write: (line: string) => void
  /** Last lines written, for error messages. */
  readonly tail: () => string
  readonly close: () => Promise<void>
  /** Location of the full output, for error messages. */
  readonly location: string
}

const tailLineCount = 40

const openOutputSink = (dataDir: string, onLog: ((line: string) => void) | undefined): OutputSink => {
  const recent: Array<string> = []
  const remember = (line: string) => {
    recent.push(line)
    if (recent.length > tailLineCount) recent.shift()
  }
  const tail = () => recent.join("\n")

  if (onLog !== undefined) {
    return {
      write: (line) => {
        remember(line)
        onLog(line)
      },
      tail,
      close: async () => {},
      location: "the onLog callback"
    }
  }

  const logFile = path.join(dataDir, "broker.log")
  const stream = fs.createWriteStream(logFile, { flags: "a" })
  // A write error must not crash Node. It appears in the tail, which error messages include.
  stream.on("error", (error) => remember(`failed to write ${logFile}: ${error.message}`))
  return {
    write: (line) => {
      remember(line)
      if (!stream.destroyed) stream.write(`${line}\n`)
    },
    tail,
    close: () =>
      new Promise((resolve) => {
        if (stream.destroyed) return resolve()
        stream.once("close", () => resolve())
        stream.end()
      }),
    location: logFile
  }
}

// ---------------------------------------------------------------------------
// Start and stop

/** Options of `startLocalKafka`. */
export interface LocalKafkaOptions {
  /** Broker storage. Formatted on the first start and reused afterwards. Created if missing. */
  readonly dataDir: string
  /** Client (PLAINTEXT) port on 127.0.0.1. The default, 0, picks a free port. */
  readonly port?: number
  /** KRaft controller port on 127.0.0.1. The default, 0, picks a free port. */
  readonly controllerPort?: number
  /** Maximum JVM heap in MiB, default 512. */
  readonly heapMb?: number
  /** Receives each line of broker and storage-tool output and must not throw. Without it, the lines go to `<dataDir>/broker.log`. */
  readonly onLog?: (line: string) => void
  /** Maximum time from spawning the JVM until the broker serves a client request, in milliseconds, default 60000. */
  readonly readyTimeoutMs?: number
  /** Time that `stop()` waits after SIGTERM before it sends SIGKILL, in milliseconds, default 20000. */
  readonly stopTimeoutMs?: number
  /**
   * JVM flags besides `-Xmx`, default `-XX:+UseSerialGC -XX:TieredStopAtLevel=1`. In a few warm starts
   * on a shared 2-core machine (load average 3 to 7), they cut the time to ready from 4-7 s to 2.3-4 s,
   * a small and noisy sample. C1-only compilation lowers peak throughput, so pass `[]` for benchmarks.
   */
  readonly jvmArgs?: ReadonlyArray<string>
  /** Broker settings added to or replacing those of `renderServerProperties`. */
  readonly brokerProperties?: Readonly<Record<string, string>>
  /** Java command, default `$JAVA_HOME/bin/java` or `java`. */
  readonly java?: string
  /** Maven command, default `mvn`. */
  readonly mvn?: string
  /** Aborting kills the broker and rejects the start with reason "Aborted". */
  readonly signal?: AbortSignal
}

/** Exit status of a broker process. */
export interface BrokerExit {
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null
}

/** A running local broker. */
export interface LocalKafkaHandle {
  /** Bootstrap servers for clients, `127.0.0.1:<port>`. */
  readonly brokers: ReadonlyArray<string>
  readonly port: number
  readonly controllerPort: number
  /** Process id of the broker JVM. */
  readonly pid: number
  readonly clusterId: string
  readonly dataDir: string
  /** Settles when the broker process ends, whether through `stop()` or not. */
  readonly exited: Promise<BrokerExit>
  /**
   * Stops the broker: SIGTERM, then SIGKILL after `stopTimeoutMs`, and removes the lock file.
   * Later calls return the same promise. Rejects with reason "StopFailed" only if the process survives SIGKILL for 5 s.
   */
  readonly stop: () => Promise<void>
}

const defaultJvmArgs: ReadonlyArray<string> = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
// Kafka 4.1 logs "Socket server failed to bind to 127.0.0.1:<port>: Address already in use."
const bindFailurePattern = /failed to bind to [^\s:]+:(\d+)|BindException|Address already in use/
const maxBindAttempts = 3

const validatePort = (name: string, value: number): void => {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw failure("InvalidOptions", `${name} must be an integer from 0 to 65535, got ${value}`)
  }
}

/**
 * Starts a local broker on `options.dataDir` and resolves once it serves Kafka clients, that is when
 * a kafkajs `describeCluster` returns the cluster id of this data directory and lists the broker's port.
 * Resolves the classpath and formats the storage first when needed.
 *
 * A second start on a data directory whose broker is running fails with reason "DataDirLocked",
 * because sharing one broker between two owners would make `stop()` ambiguous.
 *
 * If the Node process exits while the broker runs, an 'exit' listener kills the broker with SIGKILL.
 * That listener does not run when Node itself is killed by SIGKILL, or by a signal that has no
 * handler (Node's default for SIGTERM and SIGINT), so the broker is then left running. The broker
 * runs in a process group of its own, so a Ctrl-C in a terminal reaches only the Node process, which
 * can then commit its last batch before it stops the broker. The next start on the same data
 * directory stops an orphaned broker, on Linux only (it reads /proc to confirm the process).
 */
export const startLocalKafka = async (options: LocalKafkaOptions): Promise<LocalKafkaHandle> => {
  const requestedPort = options.port ?? 0
  const requestedControllerPort = options.controllerPort ?? 0
  const heapMb = options.heapMb ?? 512
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000
  const stopTimeoutMs = options.stopTimeoutMs ?? 20_000
  validatePort("port", requestedPort)
  validatePort("controllerPort", requestedControllerPort)
  if (requestedPort !== 0 && requestedPort === requestedControllerPort) {
    throw failure("InvalidOptions", `port and controllerPort must differ, both are ${requestedPort}`)
  }
  if (!Number.isInteger(heapMb) || heapMb < 64) {
    throw failure("InvalidOptions", `heapMb must be an integer of at least 64, got ${heapMb}`)
  }

  const dataDir = path.resolve(options.dataDir)
  const propertiesFile = path.join(dataDir, "server.properties")
  const lockFile = path.join(dataDir, "broker.lock")
  try {
    fs.mkdirSync(dataDir, { recursive: true })
  } catch (error) {
    throw asStartFailure(error, dataDir)
  }

  const output = openOutputSink(dataDir, options.onLog)
  try {
    await acquireLock(lockFile, propertiesFile, stopTimeoutMs, output.write)
  } catch (error) {
    await output.close()
    throw asStartFailure(error, dataDir)
  }

  try {
    const java = options.java ?? defaultJavaCommand()
    await checkJava(java)
    const classpath = await resolveClasspath({
      ...(options.mvn === undefined ? {} : { mvn: options.mvn }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onLog: output.write
    })
    throwIfAborted(options.signal, "classpath resolution")

    const launch: LaunchSettings = {
      java,
      classpath,
      dataDir,
      propertiesFile,
      lockFile,
      heapMb,
      jvmArgs: options.jvmArgs ?? defaultJvmArgs,
      brokerProperties: options.brokerProperties ?? {},
      readyTimeoutMs,
      stopTimeoutMs,
      signal: options.signal,
      output
    }
    const clusterId = await formatStorageOnce(launch)

    for (let attempt = 1; ; attempt++) {
      // Three distinct free ports leave at least two after dropping any that equal a requested port.
      const free = (await findFreePorts(3)).filter((free) => free !== requestedPort && free !== requestedControllerPort)
      const port = requestedPort === 0 ? (free[0] ?? 0) : requestedPort
      const controllerPort = requestedControllerPort === 0 ? (free[1] ?? 0) : requestedControllerPort
      try {
        return await launchBroker(launch, clusterId, port, controllerPort)
      } catch (error) {
        // Only a port picked here may be taken by a race, so a requested port that is in use fails at once.
        const portInUse = error instanceof LocalKafkaError && error.reason === "PortInUse"
        const pickedPortTaken =
          portInUse &&
          (error.port === undefined
            ? requestedPort === 0 || requestedControllerPort === 0
            : (error.port === port && requestedPort === 0) || (error.port === controllerPort && requestedControllerPort === 0))
        if (!pickedPortTaken || attempt >= maxBindAttempts) throw error
        output.write(`a chosen port was taken before the broker bound it (attempt ${attempt} of ${maxBindAttempts}), retrying with new ports`)
      }
    }
  } catch (error) {
    fs.rmSync(lockFile, { force: true })
    await output.close()
    throw asStartFailure(error, dataDir)
  }
}

/** Wraps errors other than `LocalKafkaError`, such as a data directory that cannot be written. */
const asStartFailure = (error: unknown, dataDir: string): LocalKafkaError =>
  error instanceof LocalKafkaError
    ? error
    : failure("StartFailed", `failed to start a local Kafka broker in ${dataDir}: ${error instanceof Error ? error.message : String(error)}`, error)

interface LaunchSettings {
  readonly java: string
  readonly classpath: ReadonlyArray<string>
  readonly dataDir: string
  readonly propertiesFile: string
  readonly lockFile: string
  readonly heapMb: number
  readonly jvmArgs: ReadonlyArray<string>
  readonly brokerProperties: Readonly<Record<string, string>>
  readonly readyTimeoutMs: number
  readonly stopTimeoutMs: number
  readonly signal: AbortSignal | undefined
  readonly output: OutputSink
}

const logDirsOf = (dataDir: string): string => path.join(dataDir, "kafka-logs")

const writeServerProperties = (launch: LaunchSettings, port: number, controllerPort: number): void => {
  const text = renderServerProperties({ port, controllerPort, logDirs: logDirsOf(launch.dataDir), overrides: launch.brokerProperties })
  fs.writeFileSync(launch.propertiesFile, text)
}

/**
 * Formats the storage with `kafka-storage format --standalone` unless `meta.properties` exists,
 * and returns the cluster id. The id is written to `<dataDir>/cluster-id` before formatting, so a
 * format that failed half-way is retried with the same id.
 */
const formatStorageOnce = async (launch: LaunchSettings): Promise<string> => {
  const clusterIdFile = path.join(launch.dataDir, "cluster-id")
  const formattedId = readMetaClusterId(path.join(logDirsOf(launch.dataDir), "meta.properties"))
  if (formattedId !== undefined) {
    if (!fs.existsSync(clusterIdFile) || fs.readFileSync(clusterIdFile, "utf8").trim() !== formattedId) {
      fs.writeFileSync(clusterIdFile, `${formattedId}\n`)
    }
    return formattedId
  }

  const savedId = fs.existsSync(clusterIdFile) ? fs.readFileSync(clusterIdFile, "utf8").trim() : ""
  const clusterId = /^[A-Za-z0-9_-]{22}$/.test(savedId) ? savedId : randomClusterId()
  fs.writeFileSync(clusterIdFile, `${clusterId}\n`)

  // --standalone records this controller endpoint in the initial voter set. Later starts may use other
  // ports, because the single voter elects itself (the restart test covers this with Kafka 4.1.1).
  writeServerProperties(launch, 9092, 9093)
  const args = [
    `-Xmx${launch.heapMb}m`,
    ...launch.jvmArgs,
    `-Dlog4j2.configurationFile=${log4jConfigFile}`,
    "-cp",
    launch.classpath.join(path.delimiter),
    "kafka.tools.StorageTool",
    "format",
    "--standalone",
    "-t",
    clusterId,
    "-c",
    launch.propertiesFile
  ]
  const result = await runCommand(launch.java, args, {
    cwd: launch.dataDir,
    timeoutMs: 60_000,
    signal: launch.signal,
    onLine: launch.output.write
  })
  throwIfAborted(launch.signal, "storage format")
  if (result.exitCode !== 0) {
    const outcome = result.timedOut ? "timed out after 60 s" : `failed (${describeExit(result)})`
    throw failure("FormatFailed", `formatting Kafka storage in ${launch.dataDir} ${outcome}:\n${lastLines(result.lines, 30)}`)
  }
  return clusterId
}

/** Spawns the broker JVM and waits until it is ready. On failure it stops the broker before rethrowing. */
const launchBroker = async (
  launch: LaunchSettings,
  clusterId: string,
  port: number,
  controllerPort: number
): Promise<LocalKafkaHandle> => {
  writeServerProperties(launch, port, controllerPort)
  const output = launch.output
  output.write(`---- ${new Date().toISOString()} starting Kafka broker on 127.0.0.1:${port} (controller ${controllerPort}) ----`)

  const args = [
    `-Xmx${launch.heapMb}m`,
    ...launch.jvmArgs,
    `-Dlog4j2.configurationFile=${log4jConfigFile}`,
    "-cp",
    launch.classpath.join(path.delimiter),
    "kafka.Kafka",
    launch.propertiesFile
  ]
  const child = spawn(launch.java, args, { cwd: launch.dataDir, stdio: ["ignore", "pipe", "pipe"], detached: true })
  const spawned = new Promise<number>((resolve, reject) => {
    child.once("spawn", () => resolve(child.pid ?? -1))
    child.once("error", reject)
  })
  // Without a listener, a later 'error' (for example a failed kill) would crash the Node process.
  child.on("error", (error) => output.write(`Kafka broker process error: ${error.message}`))
  let bindFailure: RegExpExecArray | null = null
  const onBrokerLine = (line: string) => {
    if (bindFailure?.[1] === undefined) bindFailure = bindFailurePattern.exec(line) ?? bindFailure
    output.write(line)
  }
  readline.createInterface({ input: child.stdout }).on("line", onBrokerLine)
  readline.createInterface({ input: child.stderr }).on("line", onBrokerLine)

  const exited = new Promise<BrokerExit>((resolve) => {
    child.once("exit", (exitCode, signal) => resolve({ exitCode, signal }))
  })
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))

  let pid: number
  try {
    pid = await spawned
  } catch (error) {
    throw failure("BrokerExited", `failed to spawn \`${launch.java}\`: ${String(error)}`, error)
  }
  trackBroker(child, launch.lockFile)
  const record: LockRecord = { ownerPid: process.pid, brokerPid: pid, port, controllerPort, startedAt: new Date().toISOString() }
  fs.writeFileSync(launch.lockFile, JSON.stringify(record))

  let stopping: Promise<void> | undefined
  let ready = false
  const stop = (): Promise<void> => {
    stopping ??= terminate(child, exited, launch.stopTimeoutMs, output).then(async () => {
      runningBrokers.delete(child)
      fs.rmSync(launch.lockFile, { force: true })
      // The stdio pipes close shortly after the exit, and waiting for that lets the last lines reach the sink.
      await withTimeout(closed, 2_000, undefined)
      await output.close()
    })
    return stopping
  }

  void exited.then((exit) => {
    if (stopping === undefined && ready) {
      output.write(`Kafka broker pid ${pid} exited unexpectedly (${describeExit(exit)})`)
      void stop()
    }
  })

  try {
    await waitUntilReady({
      port,
      clusterId,
      exited,
      bindFailure: () => bindFailure,
      deadlineMs: launch.readyTimeoutMs,
      signal: launch.signal,
      output
    })
  } catch (error) {
    // An aborted start has no caller waiting for a clean shutdown, so the broker is killed at once.
    if (launch.signal?.aborted === true) child.kill("SIGKILL")
    await terminate(child, exited, launch.stopTimeoutMs, output).catch((stopError: unknown) => {
      output.write(`failed to stop the broker after a failed start: ${String(stopError)}`)
    })
    runningBrokers.delete(child)
    await withTimeout(closed, 2_000, undefined)
    throw error
  }
  ready = true

  return {
    brokers: [`127.0.0.1:${port}`],
    port,
    controllerPort,
    pid,
    clusterId,
    dataDir: launch.dataDir,
    exited,
    stop
  }
}

/** Sends SIGTERM, waits up to `stopTimeoutMs`, then sends SIGKILL and waits up to 5 s more. */
const terminate = async (
  child: ChildProcess,
  exited: Promise<BrokerExit>,
  stopTimeoutMs: number,
  output: OutputSink
): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exitedWithin = (ms: number): Promise<boolean> => withTimeout(exited.then(() => true), ms, false)

  child.kill("SIGTERM")
  if (await exitedWithin(stopTimeoutMs)) return
  output.write(`Kafka broker pid ${child.pid} did not exit within ${stopTimeoutMs} ms of SIGTERM, sending SIGKILL`)
  child.kill("SIGKILL")
  if (await exitedWithin(5_000)) return
  throw failure("StopFailed", `Kafka broker pid ${child.pid} did not exit within 5 s of SIGKILL`)
}

/**
 * Polls the broker with kafkajs `describeCluster` every 250 ms. Rejects when the process exits, the
 * deadline passes or the signal aborts, with the tail of the broker output in the message.
 */
const waitUntilReady = async (settings: {
  readonly port: number
  readonly clusterId: string
  readonly exited: Promise<BrokerExit>
  /** Match of the broker output line that reported a failed bind, preferring one that names the port. */
  readonly bindFailure: () => RegExpExecArray | null
  readonly deadlineMs: number
  readonly signal: AbortSignal | undefined
  readonly output: OutputSink
}): Promise<void> => {
  const { port, output } = settings
  const kafka = new Kafka({
    clientId: "local-kafka-readiness",
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { retries: 0 }
  })
  const deadline = Date.now() + settings.deadlineMs
  let exit: BrokerExit | undefined
  void settings.exited.then((value) => {
    exit = value
  })
  let lastError = "no response yet"

  for (;;) {
    if (exit !== undefined) {
      const details = `Last output (full output in ${output.location}):\n${output.tail()}`
      const bindFailure = settings.bindFailure()
      if (bindFailure !== null) {
        const busyPort = bindFailure[1] === undefined ? undefined : Number(bindFailure[1])
        const busyDescription = busyPort === undefined ? `port ${port} or the controller port` : `port ${busyPort}`
        const message = `Kafka broker exited during startup because ${busyDescription} is already in use on 127.0.0.1. Choose another port, or 0 for a free one. ${details}`
        throw busyPort === undefined
          ? new LocalKafkaError({ reason: "PortInUse", message })
          : new LocalKafkaError({ reason: "PortInUse", message, port: busyPort })
      }
      throw failure("BrokerExited", `Kafka broker exited during startup (${describeExit(exit)}). ${details}`)
    }
    if (settings.signal?.aborted === true) {
      throw failure("Aborted", "local Kafka start was aborted while waiting for the broker", settings.signal.reason)
    }
    if (Date.now() >= deadline) {
      throw failure(
        "StartTimedOut",
        `timed out after ${settings.deadlineMs} ms waiting for the Kafka broker on 127.0.0.1:${port} to serve clients (last error: ${lastError}). Last output (full output in ${output.location}):\n${output.tail()}`
      )
    }

    const admin = kafka.admin({ retry: { retries: 0 } })
    try {
      await admin.connect()
      const cluster = await admin.describeCluster()
      if (cluster.clusterId !== settings.clusterId) {
        lastError = `port ${port} is served by another Kafka cluster (id ${cluster.clusterId}, expected ${settings.clusterId})`
      } else if (!cluster.brokers.some((broker) => broker.port === port)) {
        lastError = `the broker is not yet listed in the cluster metadata`
      } else {
        return
      }
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error)
    } finally {
      await admin.disconnect().catch(() => {})
    }
    await withTimeout(settings.exited, 250, undefined)
  }
}

// ---------------------------------------------------------------------------
// Effect API

const toLocalKafkaError =
  (reason: LocalKafkaFailure, operation: string) =>
  (error: unknown): LocalKafkaError =>
    error instanceof LocalKafkaError ? error : failure(reason, `${operation} failed: ${String(error)}`, error)

const stopInFinalizer = (handle: LocalKafkaHandle): Effect.Effect<void> =>
  Effect.tryPromise({ try: () => handle.stop(), catch: toLocalKafkaError("StopFailed", "stopping the local Kafka broker") }).pipe(
    Effect.catchAll((error) =>
      Effect.logError("local Kafka broker did not stop").pipe(
        Effect.annotateLogs({ pid: handle.pid, dataDir: handle.dataDir, error: error.message })
      )
    )
  )

/** Effect API of the local broker. */
export const LocalKafka = {
  /**
   * Starts a broker that is stopped when the scope closes. Interrupting the start kills the broker.
   * The release is bounded by `stopTimeoutMs` plus 5 s and logs, rather than fails, when the broker survives it.
   */
  scoped: (options: Omit<LocalKafkaOptions, "signal">): Effect.Effect<LocalKafkaHandle, LocalKafkaError, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) =>
      restore(
        Effect.tryPromise({
          try: (signal) => startLocalKafka({ ...options, signal }),
          catch: toLocalKafkaError("StartFailed", "starting a local Kafka broker")
        })
      ).pipe(
        Effect.tap((handle) => Effect.addFinalizer(() => stopInFinalizer(handle)))
      )
    ),

  /** `resolveClasspath` as an Effect. */
  resolveClasspath: (options: Omit<ClasspathOptions, "signal"> = {}): Effect.Effect<ReadonlyArray<string>, LocalKafkaError> =>
    Effect.tryPromise({
      try: (signal) => resolveClasspath({ ...options, signal }),
      catch: toLocalKafkaError("ClasspathFailed", "resolving the Kafka classpath")
    })
} as const
