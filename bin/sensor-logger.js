#!/usr/bin/env node
// Runs the TypeScript entry point through tsx, which registers its loader for this process.
import { register } from "tsx/esm/api"

register()
await import("../src/bin.ts")
