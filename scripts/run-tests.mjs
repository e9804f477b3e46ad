// Runs every compiled test file (dist/test/**/*.test.js) with node's built-in test runner.
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=login`.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return find(path);
    return entry.name.endsWith(".test.js") ? [path] : [];
  });
}

const files = find("dist/test").sort();
if (files.length === 0) {
  console.error("no test files found under dist/test");
  process.exit(1);
}
const result = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...process.argv.slice(2), ...files], {
  stdio: "inherit",
});
process.exit(result.status ?? 1);
