import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { OpenApi } from "@effect/platform"
import { beforeAll, describe, expect, it } from "vitest"
import { parse } from "yaml"
import { QueryApi } from "../../src/query/Api.ts"
import { collectConfigNames, type ConfigNames } from "../support/ConfigNames.ts"
import { openTypeScriptProject, repositoryRoot } from "../support/TypeScriptProject.ts"

const composeFile = join(repositoryRoot, "infra/compose.yaml")
const dockerfile = join(repositoryRoot, "Dockerfile")

// ---------------------------------------------------------------------------
// Reading the compose file and the Dockerfile

interface ComposeService {
  readonly image?: string
  readonly build?: string | { readonly context?: string; readonly dockerfile?: string }
  readonly command?: string | ReadonlyArray<string>
  readonly entrypoint?: string | ReadonlyArray<string>
  readonly environment?: Readonly<Record<string, string | number | boolean | null>> | ReadonlyArray<string>
  readonly ports?: ReadonlyArray<string | { readonly target: number }>
  readonly healthcheck?: { readonly test?: string | ReadonlyArray<string> }
  readonly depends_on?: ReadonlyArray<string> | Readonly<Record<string, { readonly condition?: string }>>
  readonly deploy?: { readonly replicas?: number }
}

const compose = parse(readFileSync(composeFile, "utf8"), { merge: true }) as {
  readonly services: Readonly<Record<string, ComposeService>>
}

/**
 * Replaces `${NAME}`, `${NAME:-default}`, `${NAME-default}` and `${NAME:?message}` as Compose does,
 * with an empty shell environment, so the result is what `docker compose up` uses without an .env
 * file. `$$` is a literal `$`.
 */
const interpolate = (text: string): string =>
  text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, _name, operator, fallback) => {
    if (match === "$$") return "$"
    if (operator === ":-" || operator === "-") return fallback as string
    if (operator === ":?" || operator === "?") throw new Error(`${match} requires a variable that this test does not set`)
    return ""
  })

/** Returns the `environment` of a service as name → interpolated value, from either the mapping or the list form. */
const composeEnvironment = (service: ComposeService): Map<string, string> => {
  const entries: Array<[string, string]> = Array.isArray(service.environment)
    ? service.environment.map((entry) => {
      const [name, ...value] = entry.split("=")
      return [name!, value.join("=")]
    })
    : Object.entries(service.environment ?? {}).map(([name, value]) => [name, value === null ? "" : String(value)])
  return new Map(entries.map(([name, value]) => [name, interpolate(value)]))
}

/** Returns a `command` or `test` as a list. A string is split at whitespace, enough for the strings this file checks. */
const asList = (value: string | ReadonlyArray<string> | undefined): Array<string> => {
  if (value === undefined) return []
  if (typeof value !== "string") return [...value]
  return value.split(/\s+/).filter((part) => part !== "")
}

interface DockerfileStage {
  /** `ENV` settings of the final stage, which the containers start with. */
  readonly environment: Map<string, string>
  readonly entrypoint: ReadonlyArray<string>
  readonly command: ReadonlyArray<string>
  /** Sources of the final stage's `COPY` lines that copy from the build context. */
  readonly copiedFromContext: ReadonlyArray<string>
}

/** Reads the final stage of the Dockerfile: its ENV, ENTRYPOINT, CMD and COPY lines. */
const readDockerfile = (path: string): DockerfileStage => {
  const instructions = readFileSync(path, "utf8")
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
  const finalStage = instructions.slice(instructions.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true))
  const environment = new Map<string, string>()
  const copiedFromContext: Array<string> = []
  let entrypoint: ReadonlyArray<string> = []
  let command: ReadonlyArray<string> = []
  for (const line of finalStage) {
    const [keyword = "", rest = ""] = line.split(/\s+(.*)/s)
    switch (keyword.toUpperCase()) {
      case "ENV":
        for (const [, name, quoted, plain] of rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|(\S*))/g)) {
          environment.set(name!, quoted ?? plain ?? "")
        }
        break
      case "ENTRYPOINT":
        entrypoint = JSON.parse(rest) as Array<string>
        break
      case "CMD":
        command = JSON.parse(rest) as Array<string>
        break
      case "COPY": {
        const parts = rest.split(/\s+/)
        if (parts.some((part) => part.startsWith("--from="))) break
        copiedFromContext.push(...parts.filter((part) => !part.startsWith("--")).slice(0, -1))
        break
      }
    }
  }
  return { environment, entrypoint, command, copiedFromContext }
}

const image = readDockerfile(dockerfile)

/** The services built from the repository's Dockerfile, with the environment their containers get. */
const sensorLoggerServices = Object.entries(compose.services).flatMap(([name, service]) => {
  const build = typeof service.build === "string" ? { context: service.build } : service.build
  if (build === undefined) return []
  const builtFrom = resolve(join(repositoryRoot, "infra"), build.context ?? ".", build.dockerfile ?? "Dockerfile")
  if (builtFrom !== dockerfile) return []
  const environment = new Map([...image.environment, ...composeEnvironment(service)])
  return [{ name, service, command: asList(service.command), environment, setInCompose: composeEnvironment(service) }]
})

const serviceRunning = (command: string) => {
  const found = sensorLoggerServices.filter((entry) => entry.command[0] === command)
  expect(found, `services that run \`${command}\``).toHaveLength(1)
  return found[0]!
}

// ---------------------------------------------------------------------------

describe("infra/compose.yaml", () => {
  let config: ConfigNames

  beforeAll(() => {
    const typescript = openTypeScriptProject()
    try {
      config = collectConfigNames(typescript, typescript.sourceFiles("src"))
    } finally {
      typescript.close()
    }
  })

  it("config scan resolves every name", () => {
    expect(config.unresolved).toEqual([])
    // One name of each form: a literal, a helper's argument, a helper's default, a curried literal.
    for (const name of ["DATABASE_URL", "INGEST_CONCURRENCY", "KAFKA_BROKERS", "LOG_LEVEL"]) {
      expect([...config.names.keys()], "names read through Config under src/").toContain(name)
    }
  })

  it("documents every setting", () => {
    const documented = readFileSync(join(repositoryRoot, "docs/configuration.md"), "utf8")
    const missing = [...config.names.keys()].filter((name) => !documented.includes(`\`${name}\``))
    expect(missing, "settings read under src/ but missing from docs/configuration.md").toEqual([])
  })

  it("runs ingest and query from the Dockerfile", () => {
    expect(sensorLoggerServices.map((entry) => entry.command[0]).sort()).toEqual(["ingest", "query"])
  })

  it("sets only variables the services read", () => {
    const unknown = sensorLoggerServices.flatMap(({ name, environment }) =>
      [...environment.keys()].filter((variable) => !config.names.has(variable)).map((variable) => `${name}: ${variable}`)
    )
    expect(unknown, "variables that no Config call under src/ reads (a misspelling, or a setting not written yet)")
      .toEqual([])
  })

  it("sets the variables each command requires", () => {
    const ingest = serviceRunning("ingest").environment
    // Without them the ingest job fails (KAFKA_BROKERS) or writes to a private embedded database.
    expect(ingest.get("KAFKA_BROKERS"), "ingest KAFKA_BROKERS").toBeTruthy()
    expect(ingest.get("DATABASE_URL"), "ingest DATABASE_URL").toBeTruthy()

    const query = serviceRunning("query").environment
    expect(query.get("QUERY_DATABASE_URL") || query.get("DATABASE_URL"), "query QUERY_DATABASE_URL or DATABASE_URL")
      .toBeTruthy()
    // The default 127.0.0.1 would accept no connection from outside the container.
    expect(query.get("HTTP_HOST"), "query HTTP_HOST").toBe("0.0.0.0")
  })

  it("points database URLs at the TimescaleDB service", () => {
    const database = composeEnvironment(compose.services["timescaledb"]!)
    for (const { name, environment } of sensorLoggerServices) {
      for (const variable of ["DATABASE_URL", "QUERY_DATABASE_URL"]) {
        const value = environment.get(variable)
        if (value === undefined) continue
        const url = new URL(value)
        expect(url.protocol, `${name} ${variable} scheme`).toBe("postgres:")
        expect(url.hostname, `${name} ${variable} host`).toBe("timescaledb")
        expect(url.port, `${name} ${variable} port`).toBe("5432")
        expect(decodeURIComponent(url.username), `${name} ${variable} user`).toBe(database.get("POSTGRES_USER"))
        expect(decodeURIComponent(url.password), `${name} ${variable} password`).toBe(database.get("POSTGRES_PASSWORD"))
        expect(url.pathname, `${name} ${variable} database`).toBe(`/${database.get("POSTGRES_DB")}`)
      }
    }
  })

  it("points KAFKA_BROKERS at an advertised listener", () => {
    const kafka = composeEnvironment(compose.services["kafka"]!)
    const advertised = (kafka.get("KAFKA_ADVERTISED_LISTENERS") ?? "").split(",").map((listener) => listener.replace(/^\w+:\/\//, ""))
    for (const { name, environment } of sensorLoggerServices) {
      const brokers = environment.get("KAFKA_BROKERS")
      if (brokers === undefined) continue
      for (const broker of brokers.split(",")) {
        expect(advertised, `${name} KAFKA_BROKERS entry ${broker}`).toContain(broker)
      }
    }
  })

  it("creates topics with as many partitions as the broker", () => {
    const { environment, service } = serviceRunning("ingest")
    const partitions = Number(environment.get("KAFKA_TOPIC_PARTITIONS") ?? "3")
    const brokerDefault = Number(composeEnvironment(compose.services["kafka"]!).get("KAFKA_NUM_PARTITIONS") ?? "1")
    // A topic that a producer creates first gets the broker's default, and keeps it.
    expect(brokerDefault, "kafka KAFKA_NUM_PARTITIONS").toBe(partitions)
    // A replica without a partition would sit idle.
    expect(partitions, "ingest KAFKA_TOPIC_PARTITIONS").toBeGreaterThanOrEqual(service.deploy?.replicas ?? 1)
  })

  it("publishes and probes the query port", () => {
    const { environment, service } = serviceRunning("query")
    const port = environment.get("HTTP_PORT")
    expect(port, "query HTTP_PORT").toMatch(/^[1-9]\d*$/)
    const containerPorts = (service.ports ?? []).map((mapping) =>
      typeof mapping === "string" ? mapping.split(":").at(-1)!.replace(/\/tcp$/, "") : String(mapping.target)
    )
    expect(containerPorts, "query container ports").toContain(port)

    const probe = asList(service.healthcheck?.test).join(" ")
    const urls = [...probe.matchAll(/https?:\/\/[^\s'"`]+/g)].map(([url]) => new URL(url))
    expect(urls, `URLs in the query health check: ${probe}`).toHaveLength(1)
    expect(urls[0]!.hostname, "health check host").toBe("127.0.0.1")
    expect(urls[0]!.port, "health check port").toBe(port)
    const served = ["/openapi.json", "/docs", ...Object.keys(OpenApi.fromApi(QueryApi).paths)]
    expect(served, "paths the query service serves").toContain(urls[0]!.pathname)
  })

  it("waits only for services with health checks", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const dependencies = Array.isArray(service.depends_on) ? {} : service.depends_on ?? {}
      for (const [dependency, { condition }] of Object.entries(dependencies)) {
        expect(Object.keys(compose.services), `${name} depends on`).toContain(dependency)
        if (condition === "service_healthy") {
          expect(compose.services[dependency]!.healthcheck?.test, `${dependency} health check, awaited by ${name}`)
            .toBeDefined()
        }
      }
    }
    const ingest = serviceRunning("ingest").service.depends_on as Record<string, { condition?: string }>
    expect(ingest["timescaledb"]?.condition, "ingest waits for timescaledb").toBe("service_healthy")
    expect(ingest["kafka"]?.condition, "ingest waits for kafka").toBe("service_healthy")
  })

  it("pins every image it does not build", () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.build !== undefined) continue
      const tag = service.image?.split("/").at(-1)?.split(":")[1]
      expect(tag, `${name} image tag`).toBeDefined()
      expect(tag, `${name} image tag`).not.toBe("latest")
    }
    expect(compose.services["kafka"]?.image).toBe("apache/kafka:4.1.1")
    expect(compose.services["timescaledb"]?.image, "timescaledb image").toMatch(/^timescale\/timescaledb:\d+\.\d+\.\d+-pg1[67]$/)
  })

  it("builds one image for every service", () => {
    const images = new Set(sensorLoggerServices.map(({ service }) => service.image))
    expect(images.size, "image names of the sensor-logger services").toBe(1)
    for (const { name, service } of sensorLoggerServices) {
      expect(service.entrypoint, `${name} entrypoint (the Dockerfile's is used)`).toBeUndefined()
    }
  })

  it("starts bin/sensor-logger.js from the Dockerfile", () => {
    expect(image.entrypoint).toEqual(["node", "bin/sensor-logger.js"])
    expect(image.copiedFromContext, "COPY sources of the final stage").toContain("bin")
  })

  // The help of a subcommand starts with its usage line (`$ ingest`). An unknown name prints the
  // top-level help with exit code 0, so the exit code alone would not catch a misspelling.
  it("runs commands the CLI defines", async () => {
    const commands = new Set(sensorLoggerServices.map(({ command }) => command[0]!))
    for (const command of commands) {
      const { stdout } = await promisify(execFile)(process.execPath, [image.entrypoint[1]!, command, "--help"], {
        cwd: repositoryRoot,
        env: { ...process.env, NO_COLOR: "1" }
      })
      const plain = stdout.replace(/\u001b\[[0-9;]*m/g, "")
      expect(plain, `help of \`${command}\``).toMatch(new RegExp(`USAGE\\s+\\$ ${command}\\b`))
    }
  }, 60_000)

  it("copies files that exist", () => {
    for (const source of image.copiedFromContext) {
      expect(existsSync(join(repositoryRoot, source)), `COPY source ${source}`).toBe(true)
    }
  })
})
