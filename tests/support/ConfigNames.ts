import {
  type CallExpression,
  type Identifier,
  isArrowFunction,
  isCallExpression,
  isFunctionDeclaration,
  isFunctionExpression,
  isIdentifier,
  isParameterDeclaration,
  isPropertyAccessExpression,
  isVariableDeclaration,
  type Node,
  type ParameterDeclaration,
  type SourceFile
} from "typescript/unstable/ast"
import { forEachNode, locationOf, stringLiteralValue, type TypeScriptProject } from "./TypeScriptProject.ts"

/** Environment variables that the code under a folder reads through Effect's `Config`, as found by {@link collectConfigNames}. */
export interface ConfigNames {
  /** Each name with the places (`path:line`) of the `Config` calls or helper calls that pass it. */
  readonly names: ReadonlyMap<string, ReadonlyArray<string>>
  /** Names that the scan could not determine statically, as `path:line: reason`. */
  readonly unresolved: ReadonlyArray<string>
}

const configDeclarations = "/effect/dist/dts/Config.d.ts"

/**
 * Collects the names passed to Effect's `Config` constructors in `files`: `Config.string("HTTP_HOST")`,
 * `Config.literal(...)("LOG_FORMAT")` and any other call whose signature, declared in effect's
 * `Config` module, has a parameter called `name`. A name that arrives through a parameter of a
 * local helper (`positiveInt(name, fallback)`) is followed to the helper's call sites and to the
 * parameter's default value. Anything else (a computed name, `Config.nested`) goes into `unresolved`,
 * except calls marked with a `config-scan: reread` comment on one of the two lines above.
 */
export const collectConfigNames = (typescript: TypeScriptProject, files: ReadonlyArray<SourceFile>): ConfigNames => {
  const { project } = typescript
  const checker = project.checker
  const names = new Map<string, Array<string>>()
  const unresolved: Array<string> = []
  const scannedPaths = new Set<string>(files.map((file) => file.path))

  const add = (name: string, where: Node) => {
    const places = names.get(name) ?? []
    places.push(locationOf(where))
    names.set(name, places)
  }

  /** Resolves the names that `expression` can evaluate to; `visited` guards against helpers that call each other. */
  const resolveName = (expression: Node, visited: Set<Node>): void => {
    const literal = stringLiteralValue(expression)
    if (literal !== undefined) return add(literal, expression)
    if (!isIdentifier(expression)) {
      unresolved.push(`${locationOf(expression)}: the name is computed (${expression.getText()}), not a string literal`)
      return
    }
    const declaration = checker.getSymbolAtLocation(expression)?.valueDeclaration?.resolve(project)
    if (declaration !== undefined && isVariableDeclaration(declaration) && declaration.initializer !== undefined) {
      return resolveName(declaration.initializer, visited)
    }
    if (declaration === undefined || !isParameterDeclaration(declaration)) {
      unresolved.push(`${locationOf(expression)}: ${expression.text} is neither a constant nor a parameter of a local helper`)
      return
    }
    if (visited.has(declaration)) return
    visited.add(declaration)
    resolveParameter(declaration, visited)
  }

  /** Resolves a helper's parameter through its default value and the arguments of every call of the helper. */
  const resolveParameter = (parameter: ParameterDeclaration, visited: Set<Node>) => {
    const helper = parameter.parent
    let helperName: Identifier | undefined
    let index = -1
    if (isFunctionDeclaration(helper) || isArrowFunction(helper) || isFunctionExpression(helper)) {
      index = helper.parameters.indexOf(parameter)
      if (isFunctionDeclaration(helper)) helperName = helper.name
      else if (isVariableDeclaration(helper.parent) && isIdentifier(helper.parent.name)) helperName = helper.parent.name
    }
    if (helperName === undefined || index < 0) {
      unresolved.push(`${locationOf(parameter)}: the name is a parameter of a function that is not a named local helper`)
      return
    }
    if (parameter.initializer !== undefined) resolveName(parameter.initializer, visited)
    // Find-all-references of the language service: unlike a per-file search, it follows imports.
    const references = checker.getReferencedSymbolsForNode(helperName, helperName.getStart())
      .flatMap((entry) => entry.references)
      .filter((reference) => scannedPaths.has(reference.path))
    for (const reference of references) {
      const node = reference.resolve(project)
      const call = node?.parent
      if (node === undefined || call === undefined || !isCallExpression(call)) continue
      // A reference that is an argument (`Array.map(names, positiveInt)`) is not a call of the helper.
      if (call.expression !== node) continue
      const argument = call.arguments[index]
      if (argument !== undefined) resolveName(argument, visited)
      else if (parameter.initializer === undefined) {
        unresolved.push(`${locationOf(call)}: the call passes no name and the parameter has no default`)
      }
    }
  }

  /**
   * True for a call on a line after a `config-scan: reread` comment: code that reads again a
   * variable declared by its own reader (to report its raw value, say) and declares no setting.
   */
  const isMarkedReread = (call: CallExpression) => {
    const file = call.getSourceFile()
    const { line } = file.getLineAndCharacterOfPosition(call.getStart(file))
    const lines = file.text.split("\n")
    return [lines[line - 1], lines[line - 2]].some((text) => text?.includes("config-scan: reread") === true)
  }

  const isNestedCall = (call: CallExpression) =>
    isPropertyAccessExpression(call.expression) && call.expression.name.text === "nested"

  for (const file of files) {
    forEachNode(file, (node) => {
      if (!isCallExpression(node)) return
      const signature = checker.getResolvedSignature(node)
      if (signature?.declaration?.path.endsWith(configDeclarations) !== true) return
      const nameIndexes = signature.getParameters().flatMap((parameter, index) => parameter.name === "name" ? [index] : [])
      if (nameIndexes.length === 0) return
      if (isMarkedReread(node)) return
      if (isNestedCall(node)) {
        unresolved.push(`${locationOf(node)}: Config.nested prefixes the names inside it, which this scan does not follow`)
        return
      }
      for (const index of nameIndexes) {
        const argument = node.arguments[index]
        if (argument !== undefined) resolveName(argument, new Set())
        // `Config.array(Config.string(), "HOSTS")`: the outer call passes the name.
        else if (!isCallExpression(node.parent)) unresolved.push(`${locationOf(node)}: a Config call without a name`)
      }
    })
  }
  return { names, unresolved }
}
