// Bundles the compiled server (`<outDir>/src/main.js`, tsc's output with its decorator metadata)
// into `<outDir>/bundle/main.js`, the file `npm start` runs. Node's ESM loader resolves, reads and
// links each of the ~1,500 modules the server imports one by one; one file starts in about half
// the time (docs/performance.md). Native addons stay outside and load from node_modules.
//   node scripts/bundle.mjs [outDir=dist]
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const outDir = process.argv[2] ?? "dist";
// The password worker is loaded by URL next to main.js (passwords.ts), so it is an entry of its own.
const entryPoints = ["src/main.js", "src/users/password-worker.js"].map((entry) => join(outDir, entry));

await build({
  entryPoints,
  outdir: join(outDir, "bundle"),
  entryNames: "[name]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Compiled addons, and pg's optional native binding, which is not installed.
  external: ["better-sqlite3", "@node-rs/argon2", "pg-native"],
  // No __name() wrapper around every function: each type-graphql class names its GraphQL type
  // explicitly (@ObjectType("User")), so esbuild renaming a colliding class (User2) renames no type.
  keepNames: false,
  // node:crypto instead of sha.js for the hash of every query (scripts/createhash-node.cjs).
  alias: { "@apollo/utils.createhash": fileURLToPath(new URL("createhash-node.cjs", import.meta.url)) },
  // Non-ASCII characters in strings and identifiers escaped; the regular expressions and comments
  // esbuild leaves alone are escaped below.
  charset: "ascii",
  // CommonJS packages inside an ES module still call require() for Node's built-ins.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});

// V8 keeps a script's source as one byte per character only when every character is Latin-1;
// validator's locale tables (regular expressions with Cyrillic, Arabic, Bengali …) would make it
// hold the 7-million-character bundle in two bytes per character, 14 MB. Each UTF-16 code unit
// outside ASCII becomes \uXXXX, which means the same in a regular expression (with or without the u
// flag, where an escaped surrogate pair is one code point), a string, an identifier or a comment.
// The one place it would not is right after a backslash, so that stops the build instead.
for (const file of ["main.js", "password-worker.js"].map((name) => join(outDir, "bundle", name))) {
  const source = readFileSync(file, "utf8");
  const escapedAfterBackslash = /\\[\u0080-\uffff]/.exec(source);
  if (escapedAfterBackslash) {
    throw new Error(
      `${file}: a backslash before a non-ASCII character at ${escapedAfterBackslash.index}; cannot escape it`,
    );
  }
  const ascii = source.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (ascii !== source) writeFileSync(file, ascii);
}
