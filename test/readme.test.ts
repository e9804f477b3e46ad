import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { CONFIG_VARIABLES } from "../src/config.js";
import { ErrorCode, ProtocolErrorCode } from "../src/errors.js";

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above the test file");
    dir = parent;
  }
  return dir;
}

const root = repositoryRoot();
const readme = readFileSync(join(root, "README.md"), "utf8");
const tableRows = readme.split("\n").filter((line) => line.startsWith("| "));

function documentedInTable(name: string): boolean {
  return tableRows.some((row) => row.includes(`\`${name}\``));
}

describe("the README stays in step with the code", () => {
  it("documents every error code the service can produce, in a table", () => {
    const missing = [...Object.values(ErrorCode), ...Object.values(ProtocolErrorCode)].filter((code) => !documentedInTable(code));
    assert.deepEqual(missing, [], "add these codes to the README's error tables");
  });

  it("documents every configuration variable the service reads", () => {
    const missing = CONFIG_VARIABLES.filter((name) => !documentedInTable(name));
    assert.deepEqual(missing, [], "add these variables to the README's configuration table");
  });

  it("justifies every dependency in one line", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, Record<string, string>>;
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
    const missing = names.filter((name) => !documentedInTable(name) && !(name.startsWith("@types/") && documentedInTable("@types/*")));
    assert.deepEqual(missing, [], "add a line for these packages to the README's dependency table");
  });

  it("gives the two set-up commands", () => {
    assert.ok(readme.includes("npm install && npm start"));
    assert.ok(readme.includes("npm test"));
  });
});
