// Bundles the compiled server (`<outDir>/src/main.js`, tsc's output with its decorator metadata)
// into `<outDir>/bundle/main.js`, the file `npm start` runs. Node's ESM loader resolves, reads and
// links each of the ~1,500 modules the server imports one by one; one file starts in about half
// the time (docs/performance.md). Native addons stay outside and load from node_modules.
//   node scripts/bundle.mjs [outDir=dist]
import { join } from "node:path";

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
  // type-graphql names GraphQL types after their classes: a renamed class would rename a type.
  keepNames: true,
  // CommonJS packages inside an ES module still call require() for Node's built-ins.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});
