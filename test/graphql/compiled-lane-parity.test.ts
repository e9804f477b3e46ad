// The compiled lane's parity test (docs/performance.md, "Compiled lane"): the HTTP suites below run
// in a child `node --test` with GTA_LANE_PARITY naming a file, so that every request the lane serves
// is answered by a shadow Apollo Server too (src/graphql/compiled-lane-parity.ts) and the comparison
// written there. The lane is on by default only because this finds no mismatch.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { DATABASES } from "../helpers/databases.js";

/**
 * The suites of HTTP queries, relative to test/ (compiled: .js), each of which starts its apps in
 * this process (startTestApp), where the parity check can see them; suites of the server process
 * (the abuse suites, production.test) run the bundle, which has no such mode.
 */
const SUITES = [
  "http.test.js",
  "flow.test.js",
  "http-hygiene.test.js",
  "lists.test.js",
  "http/graphql-route.test.js",
  "http/document-gate.test.js",
  "graphql/trusted-documents.test.js",
  "audit/audit.test.js",
  "api-tokens/scope-table.test.js",
  "api-tokens/api-tokens.test.js",
  "access/bearer.test.js",
  "accounts/disable.test.js",
  "sessions/roles-change.test.js",
  "access/client-reasons.test.js",
];

/**
 * What the run below has always compared at least, per database the suites run on (observed: 555 on
 * SQLite alone, 1,107 with PostgreSQL too; rounded down): fewer means a suite stopped reaching the lane.
 */
const MIN_COMPARED = 500 * DATABASES.length;

interface Record {
  result: "compared" | "mismatch";
  operationName: string | null;
  status: number;
  diff?: unknown;
}

const testRoot = fileURLToPath(new URL("../", import.meta.url));

describe("the compiled lane answers as Apollo does", () => {
  it("serves every request of the HTTP suites as a shadow Apollo answers it", { timeout: 300_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "lane-parity-"));
    const file = join(dir, "parity.jsonl");
    try {
      const suites = SUITES.map((suite) => join(testRoot, suite));
      for (const suite of suites) assert.ok(existsSync(suite), `${suite} is missing`);
      const { code, output } = await runChild(suites, file);
      assert.equal(code, 0, `the suites failed under the parity check:\n${output.slice(-4000)}`);
      const records = existsSync(file)
        ? readFileSync(file, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Record)
        : [];
      const mismatches = records.filter((r) => r.result === "mismatch");
      const compared = records.length - mismatches.length;
      const statuses = [...new Set(records.map((r) => r.status))].sort().join(", ");
      console.log(`compiled lane parity: ${compared} compared, ${mismatches.length} mismatches; statuses ${statuses}`);
      assert.deepEqual(
        mismatches.slice(0, 3).map((m) => JSON.stringify(m, null, 1)),
        [],
        `${mismatches.length} answers differ`,
      );
      assert.ok(compared >= MIN_COMPARED, `only ${compared} answers were compared (at least ${MIN_COMPARED} expected)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function runChild(suites: string[], file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    // Without the runner's NODE_TEST_CONTEXT, which would make the child report to this runner instead of running.
    const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
    const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...suites], {
      env: { ...env, GTA_LANE_PARITY: file },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("close", (code) => resolve({ code, output }));
  });
}
