import { join, relative } from "node:path"
import { isNoSubstitutionTemplateLiteral, isStringLiteral, type Node, type SourceFile } from "typescript/unstable/ast"
import { API, type Project } from "typescript/unstable/sync"

/** The repository's root folder. */
export const repositoryRoot = join(import.meta.dirname, "../..")

/** The program of `tsconfig.json`, opened through the TypeScript 7 API. */
export interface TypeScriptProject {
  readonly project: Project
  /** Parsed source files under `folder` (relative to the repository root), in path order. */
  readonly sourceFiles: (folder: string) => ReadonlyArray<SourceFile>
  /** Stops the `tsgo` process behind the API. */
  readonly close: () => void
}

/**
 * Opens the repository's `tsconfig.json` with the TypeScript 7 API. The API (`typescript/unstable/sync`,
 * marked unstable by TypeScript 7.0) runs `tsgo` as a child process, so callers must `close` it.
 */
export const openTypeScriptProject = (): TypeScriptProject => {
  const api = new API({ cwd: repositoryRoot })
  try {
    const configFile = join(repositoryRoot, "tsconfig.json")
    const snapshot = api.updateSnapshot({ openProject: configFile })
    const project = snapshot.getProject(configFile) ?? snapshot.getProjects()[0]
    if (project === undefined) throw new Error(`TypeScript opened no project for ${configFile}`)
    const sourceFiles = (folder: string) => {
      const prefix = `${join(repositoryRoot, folder)}/`
      return project.program.getSourceFileNames()
        .filter((name) => name.startsWith(prefix) && name.endsWith(".ts") && !name.endsWith(".d.ts"))
        .sort()
        .map((name) => {
          const file = project.program.getSourceFile(name)
          if (file === undefined) throw new Error(`TypeScript listed ${name} but returned no source file for it`)
          return file
        })
    }
    return { project, sourceFiles, close: () => api.close() }
  } catch (error) {
    api.close()
    throw error
  }
}

/** Calls `visit` on `node` and every node below it, parents first. */
export const forEachNode = (node: Node, visit: (node: Node) => void): void => {
  visit(node)
  node.forEachChild((child) => {
    forEachNode(child, visit)
    return undefined
  })
}

/** `path:line` of a node, with the path relative to the repository root, for failure messages. */
export const locationOf = (node: Node): string => {
  const file = node.getSourceFile()
  const { line } = file.getLineAndCharacterOfPosition(node.getStart(file))
  return `${relative(repositoryRoot, file.fileName)}:${line + 1}`
}

/** The value of a string literal or a template literal without substitutions, or undefined for any other node. */
export const stringLiteralValue = (node: Node | undefined): string | undefined =>
  node !== undefined && (isStringLiteral(node) || isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined
