// Types the example app's operations (src/operations.graphql) from the API's schema
// (schema/schema.graphql) with graphql-codegen's client preset, into src/gql/graphql.ts: one typed
// document per operation (LoginDocument, PostsDocument, …) that Apollo Client infers result and
// variable types from. The codegen CLI pulls @whatwg-node releases that need Node 22.15, so this
// runs the preset through @graphql-codegen/core as the CLI would. From anywhere:
//
//   node examples/web/codegen.mjs                 writes src/gql/graphql.ts
//   node examples/web/codegen.mjs --check         exits 1 when src/gql/graphql.ts is not what it would write
//   node examples/web/codegen.mjs --schema FILE   reads another schema file instead
//
// The documents are validated against the schema: an operation the schema cannot run fails here.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { preset } from "@graphql-codegen/client-preset";
import { codegen } from "@graphql-codegen/core";
import { buildASTSchema, parse } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    check: { type: "boolean", default: false },
    schema: { type: "string", default: join(here, "../../schema/schema.graphql") },
  },
});

const operationsFile = join(here, "src/operations.graphql");
const outputDir = join(here, "src/gql/");
const schema = parse(readFileSync(values.schema, "utf8"));
const operations = readFileSync(operationsFile, "utf8");

const sections = await preset.buildGeneratesSection({
  baseOutputDir: outputDir,
  schema,
  schemaAst: buildASTSchema(schema),
  documents: [{ location: relative(here, operationsFile), document: parse(operations), rawSDL: operations }],
  // DateTimeISO arrives as an ISO 8601 string, JSON (WebAuthn options and answers) as whatever it
  // holds; `import type` for the types (verbatimModuleSyntax).
  config: { scalars: { DateTimeISO: "string", JSON: "unknown" }, useTypeImports: true },
  // Fragments spread into an operation's result type, instead of masked behind useFragment.
  presetConfig: { fragmentMasking: false },
  plugins: [],
  pluginMap: {},
  pluginContext: {},
  profiler: undefined,
  documentTransforms: [],
});
// Only graphql.ts: gql.ts maps `graphql(...)` calls in source files to documents, and the app has none.
const section = sections.find((s) => s.filename.endsWith("/graphql.ts"));
if (!section) throw new Error("the client preset produced no graphql.ts");
const output = await codegen({ ...section, schemaAst: buildASTSchema(schema) });

const target = section.filename;
if (values.check) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {
    // missing: stale
  }
  if (current !== output) {
    console.error(`${relative(process.cwd(), target)} is stale: run node examples/web/codegen.mjs`);
    process.exit(1);
  }
  console.log(`${relative(process.cwd(), target)} is current`);
} else {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, output);
  console.log(`wrote ${relative(process.cwd(), target)}`);
}
