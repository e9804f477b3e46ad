// Types the example app's operations (src/operations.graphql) from the API's schema
// (schema/schema.graphql) with graphql-codegen's client preset, into src/gql/graphql.ts: one typed
// document per operation (LoginDocument, PostsDocument, …) that Apollo Client infers result and
// variable types from, each carrying its manifest id (`__meta__.hash`). It also writes the manifest,
// src/gql/persisted-documents.json (`{"sha256:<hash>": "<document>"}`), for the server's
// TRUSTED_DOCUMENTS (docs/trusted-documents.md). The codegen CLI pulls @whatwg-node releases that
// need Node 22.15, so this runs the preset through @graphql-codegen/core as the CLI would. From anywhere:
//
//   node examples/web/codegen.mjs                 writes src/gql/graphql.ts and src/gql/persisted-documents.json
//   node examples/web/codegen.mjs --check         exits 1 when either is not what it would write
//   node examples/web/codegen.mjs --schema FILE   reads another schema file instead
//   node examples/web/codegen.mjs --documents FILE --out DIR
//                                                 another client's operations (the client recipes' are
//                                                 test/clients/recipes/operations.graphql, into test/clients/recipes/gql/)
//
// The documents are validated against the schema: an operation the schema cannot run fails here.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { preset } from "@graphql-codegen/client-preset";
import { codegen } from "@graphql-codegen/core";
import { buildASTSchema, Kind, parse, visit } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    check: { type: "boolean", default: false },
    schema: { type: "string", default: join(here, "../../schema/schema.graphql") },
    documents: { type: "string", default: join(here, "src/operations.graphql") },
    out: { type: "string", default: join(here, "src/gql") },
  },
});

const operationsFile = resolve(values.documents);
const outputDir = `${resolve(values.out)}/`;
const schema = parse(readFileSync(values.schema, "utf8"));
const operations = readFileSync(operationsFile, "utf8");

/**
 * The server runs the listed text, not what a client would have sent: the __typename that Apollo
 * Client's and urql's caches add to every selection set but an operation's root must be in the
 * listed text already. (The preset's addTypenameSelectionDocumentTransform adds it at the root of
 * queries and mutations too, where no cache needs it, and where it would make a refreshToken
 * operation more than "only refreshToken", which the server then refuses for an expired token.)
 */
function withTypenames({ documents }) {
  const typename = { kind: Kind.FIELD, name: { kind: Kind.NAME, value: "__typename" } };
  const visitor = {
    SelectionSet(node, _key, parent) {
      if (parent?.kind === Kind.OPERATION_DEFINITION) return undefined;
      if (node.selections.some((s) => s.kind === Kind.FIELD && s.name.value === "__typename")) return undefined;
      return { ...node, selections: [typename, ...node.selections] };
    },
  };
  return documents.map((source) => ({ ...source, document: source.document && visit(source.document, visitor) }));
}

const sections = await preset.buildGeneratesSection({
  baseOutputDir: outputDir,
  schema,
  schemaAst: buildASTSchema(schema),
  documents: [{ location: relative(here, operationsFile), document: parse(operations), rawSDL: operations }],
  // DateTimeISO arrives as an ISO 8601 string, JSON (WebAuthn options and answers) as whatever it
  // holds; `import type` for the types (verbatimModuleSyntax).
  config: { scalars: { DateTimeISO: "string", JSON: "unknown" }, useTypeImports: true },
  // Fragments spread into an operation's result type, instead of masked behind useFragment. Each
  // document's id is the SHA-256 of its normalized text, written `sha256:<hex>` (GraphQL over HTTP's
  // persisted documents), which the server takes with or without the prefix.
  presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: "sha256" } },
  plugins: [],
  pluginMap: {},
  pluginContext: {},
  profiler: undefined,
  documentTransforms: [{ name: "addTypename", transformObject: { transform: withTypenames } }],
});
// graphql.ts and the manifest: gql.ts maps `graphql(...)` calls in source files to documents, and
// these clients have none.
const wanted = ["/graphql.ts", "/persisted-documents.json"].map((name) => {
  const section = sections.find((s) => s.filename.endsWith(name));
  if (!section) throw new Error(`the client preset produced no ${name.slice(1)}`);
  return section;
});
// Together: the manifest's plugin waits for graphql.ts's to have hashed every document.
const outputs = await Promise.all(wanted.map((section) => codegen({ ...section, schemaAst: buildASTSchema(schema) })));

let stale = false;
for (const [index, { filename: target }] of wanted.entries()) {
  const output = target.endsWith(".json") ? `${outputs[index]}\n` : outputs[index];
  const name = relative(process.cwd(), target);
  if (values.check) {
    let current = "";
    try {
      current = readFileSync(target, "utf8");
    } catch {
      // missing: stale
    }
    if (current === output) console.log(`${name} is current`);
    else {
      const again = [relative(process.cwd(), fileURLToPath(import.meta.url)), ...process.argv.slice(2)];
      console.error(`${name} is stale: run node ${again.filter((arg) => arg !== "--check").join(" ")}`);
      stale = true;
    }
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, output);
    console.log(`wrote ${name}`);
  }
}
if (stale) process.exit(1);
