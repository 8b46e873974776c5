/**
 * Summarizes V8 CPU profiles (the `.cpuprofile` files of `node --cpu-prof`): the self time of
 * each package or project folder, and the functions with the most self time. It is how the
 * per-stage costs in docs/benchmarks.md were measured.
 *
 * `--skip-seconds S` leaves out the first S seconds of each profile, such as a process's start.
 *
 * Run: npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile [more files] [--top 25] [--skip-seconds 0]
 */
import * as fs from "node:fs"
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

const { values: flags, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { "top": { type: "string", default: "25" }, "skip-seconds": { type: "string", default: "0" } }
})

if (files.length === 0) {
  console.error("usage: npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile [more files] [--top 25] [--skip-seconds 0]")
  process.exit(2)
}

/** Names the stage a frame belongs to: its npm package, its folder of this project, or a V8 category. */
const stageOf = (frame: ProfileNode["callFrame"]): string => {
  const { functionName, url } = frame
  if (url === "") {
    if (functionName === "(garbage collector)") return "(garbage collector)"
    if (functionName === "(idle)" || functionName === "(program)") return functionName
    return `(native) ${functionName}`
  }
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (packageMatch !== null) return packageMatch[1]!
  const projectMatch = /\/(src|bench|tests)\/(.+)\/[^/]+$/.exec(url)
  if (projectMatch !== null) return `${projectMatch[1]}/${projectMatch[2]}`
  if (url.startsWith("node:")) return url
  return url.replace(/^file:\/\//, "")
}

const skipMicros = Number(flags["skip-seconds"]) * 1e6
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
for (const [name, micros] of sorted(selfByFunction).slice(0, Number(flags.top))) {
  if (!name.startsWith("(idle)")) console.log(row(name, micros))
}
