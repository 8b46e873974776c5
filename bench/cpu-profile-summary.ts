/**
 * Summarizes V8 CPU profiles (the `.cpuprofile` files of `node --cpu-prof`): the self time of
 * each package or project folder, and the functions with the most self time. It is how the
 * per-stage costs in docs/benchmarks.md were measured.
 *
 * `--skip-seconds S` leaves out the first S seconds of each profile, such as a process's start.
 *
 * Run: npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile|DIR [more] [--top 25] [--skip-seconds 0]
 */
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { parseArgs } from "node:util"

/** A node of a V8 CPU profile, with the fields this summary reads. */
interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const usage = "usage: npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile|DIR [more] [--top 25] [--skip-seconds 0]"

/** Prints `message` and the usage line, and exits with 2. */
const fail = (message: string): never => {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}

let parsed: ReturnType<typeof parseOptions>
const parseOptions = () =>
  parseArgs({
    allowPositionals: true,
    options: { "top": { type: "string", default: "25" }, "skip-seconds": { type: "string", default: "0" } }
  })
try {
  parsed = parseOptions()
} catch (error) {
  parsed = fail((error as Error).message)
}
const { values: flags, positionals } = parsed

const top = Number(flags.top)
if (!Number.isSafeInteger(top) || top < 0) fail(`--top ${flags.top}: expected a non-negative integer`)
const skipSeconds = Number(flags["skip-seconds"])
if (!Number.isFinite(skipSeconds) || skipSeconds < 0) fail(`--skip-seconds ${flags["skip-seconds"]}: expected a non-negative number`)

/** Profile files to read: each file argument, and the `.cpuprofile` files of each folder argument. */
const files = positionals.flatMap((argument) => {
  if (!fs.existsSync(argument)) return fail(`${argument}: no such file or folder`)
  if (!fs.statSync(argument).isDirectory()) return [argument]
  const inFolder = fs.readdirSync(argument).filter((name) => name.endsWith(".cpuprofile")).map((name) => path.join(argument, name))
  return inFolder.length > 0 ? inFolder : fail(`${argument}: the folder contains no .cpuprofile file`)
})
if (files.length === 0) fail("no profile given")

/** Names the stage a frame belongs to: its npm package, its folder of this project, or a V8 category. */
const stageOf = (frame: ProfileNode["callFrame"]): string => {
  const { functionName, url } = frame
  if (url === "") {
    if (functionName === "(garbage collector)") return "(garbage collector)"
    if (functionName === "(idle)" || functionName === "(program)") return functionName
    return `(native) ${functionName}`
  }
  // On the embedded database, nearly all WebAssembly time is PGlite's.
  if (url.startsWith("wasm://")) return "(WebAssembly)"
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (packageMatch !== null) return packageMatch[1]!
  const projectMatch = /\/(src|bench|tests)\/(.+)\/[^/]+$/.exec(url)
  if (projectMatch !== null) return `${projectMatch[1]}/${projectMatch[2]}`
  if (url.startsWith("node:")) return url
  return url.replace(/^file:\/\//, "")
}

const skipMicros = skipSeconds * 1e6
const selfByStage = new Map<string, number>()
const selfByFunction = new Map<string, number>()
let totalMicros = 0

for (const file of files) {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  let elapsedMicros = 0
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0
    elapsedMicros += delta
    const frame = nodes.get(id)?.callFrame
    if (frame === undefined || elapsedMicros < skipMicros) return
    totalMicros += delta
    const stage = stageOf(frame)
    selfByStage.set(stage, (selfByStage.get(stage) ?? 0) + delta)
    const name = `${frame.functionName || "(anonymous)"} ${frame.url.replace(/^.*node_modules\//, "").replace(/^.*\/(src|bench|tests)\//, "$1/")}:${frame.lineNumber + 1}`
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + delta)
  })
}

const busyMicros = totalMicros - (selfByStage.get("(idle)") ?? 0)
const row = (name: string, micros: number) =>
  `| ${name} | ${(micros / 1e6).toFixed(2)} | ${((micros / Math.max(busyMicros, 1)) * 100).toFixed(1)} |`
const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])

console.log(`${files.length} profile(s), ${(totalMicros / 1e6).toFixed(1)} s sampled, ${(busyMicros / 1e6).toFixed(1)} s not idle`)
console.log("")
console.log("| stage | self s | % of busy |")
console.log("|---|---|---|")
for (const [stage, micros] of sorted(selfByStage)) {
  if (stage !== "(idle)" && micros >= busyMicros * 0.005) console.log(row(stage, micros))
}
console.log("")
console.log("| function | self s | % of busy |")
console.log("|---|---|---|")
for (const [name, micros] of sorted(selfByFunction).filter(([name]) => !name.startsWith("(idle)")).slice(0, top)) {
  console.log(row(name, micros))
}
