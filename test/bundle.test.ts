// What scripts/bundle.mjs promises about dist/bundle/, the files `npm start` runs: no __name()
// wrappers (keepNames is off, so every GraphQL type must be named explicitly), node:crypto for
// Apollo's query hashes instead of sha.js, and ASCII only, so V8 holds the source in one byte per
// character. test/main.test.ts checks that the bundle serves exactly the committed schema.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const bundleDir = join(root, "dist", "bundle");
const BUNDLE_FILES = ["main.js", "password-worker.js"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

describe("the bundle npm start runs", () => {
  const main = readFileSync(join(bundleDir, "main.js"), "utf8");

  it("is ASCII only, so V8 keeps its source in one byte per character", () => {
    for (const file of BUNDLE_FILES) {
      const source = readFileSync(join(bundleDir, file), "utf8");
      const first = /[\u0080-\uffff]/.exec(source);
      assert.equal(first, null, `${file}: non-ASCII ${JSON.stringify(first?.[0])} at ${first?.index}`);
    }
    // validator's locale tables are still there, escaped: the Hebrew alphabet's range.
    assert.ok(main.includes("he: /^[\\u05d0-\\u05ea]+$/"), "the escaped Hebrew locale pattern");
  });

  it("wraps no function in __name(), and hashes with node:crypto instead of sha.js", () => {
    assert.equal(main.match(/\b__name\(/g), null);
    assert.ok(!main.includes("node_modules/sha.js/"), "sha.js is not bundled");
    assert.ok(!main.includes("node_modules/@apollo/utils.createhash/"), "Apollo's createhash is replaced");
    assert.ok(main.includes("scripts/createhash-node.cjs"), "by scripts/createhash-node.cjs");
  });

  it("names every GraphQL object, input and interface type explicitly, so no class name reaches the schema", () => {
    const unnamed: string[] = [];
    for (const file of sourceFiles(join(root, "src"))) {
      const text = readFileSync(file, "utf8");
      for (const match of text.matchAll(/@(ObjectType|InputType|InterfaceType)\(\s*(?!["'])/g)) {
        const line = text.slice(0, match.index).split("\n").length;
        unnamed.push(`${relative(root, file)}:${line} @${match[1]}`);
      }
    }
    assert.deepEqual(unnamed, [], 'give each a name: @ObjectType("User", { … })');
  });
});
