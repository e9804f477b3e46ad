// Runs the build (tsc, then the bundle `npm start` runs) only when dist/ is missing or older than a
// source file, so `npm start` after a build starts at once, and a fresh clone builds itself.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const stamp = "dist/.tsbuildinfo";

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const bundle = "dist/bundle/main.js";
const sources = Math.max(
  newest("src"),
  newest("test"),
  statSync("tsconfig.json").mtimeMs,
  statSync("package.json").mtimeMs,
);
const compiled = existsSync(stamp) && statSync(stamp).mtimeMs >= sources;
if (!compiled) {
  process.stderr.write("building (tsc)…\n");
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
}
if (!compiled || !existsSync(bundle) || statSync(bundle).mtimeMs < statSync(stamp).mtimeMs) {
  process.stderr.write("bundling…\n");
  execFileSync(process.execPath, ["scripts/bundle.mjs"], { stdio: "inherit" });
}
