// The work done once when TRUSTED_DOCUMENTS is loaded: the manifest read in either format, each
// document priced (refused when no request could run it, its cost recorded when no variable changes
// it), and Apollo answering a listed document from that set without parsing or validating it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import type { GraphQLSchema } from "graphql";

import type { Context } from "../../src/access/principal.js";
import { type Config, ConfigError } from "../../src/config.js";
import { createOperationRules } from "../../src/graphql/operation-rules.js";
import { createTrustedDocumentStore, fixedCostOf } from "../../src/graphql/trusted-document-store.js";
import {
  checkManifest,
  documentHash,
  type ManifestCheck,
  manifestCheckOf,
  readManifest,
  type TrustedDocument,
  TrustedDocumentSet,
} from "../../src/graphql/trusted-documents.js";
import { loadConfig } from "../../src/load-config.js";
import { buildAppSchema } from "../../src/schema.js";
import { TEST_SECRET } from "../helpers/app.js";

const FILE = "/etc/gta/manifest.json";
const ME = "query Me { me { id username } }";
// Nothing a variable changes: `$id` is no list's `first`.
const ONE_POST = "query OnePost($id: ID!) { post(id: $id) { id title body } }";
// 1 × (2 + 20 + 2 + 1 × 22) = 46 with n = 1, 100 × (2 + 20 + 2 + 100 × 22) = 222,400 with n = 100.
const FEED = "query Feed($n: Int) { posts(first: $n) { body author { posts(first: $n) { body } } } }";
const HUGE = "{ posts(first: 100) { body author { posts(first: 100) { body } } } }";
// 2 + 6 × 20 = 122, over SUBSCRIPTION_MAX_COST's 100.
const WIDE_SUBSCRIPTION = "subscription { postCreated { body a: body b: body c: body d: body e: body } }";

/** A codegen-style manifest (`{"<sha256>": "<text>"}`) of `bodies`. */
function codegenManifest(...bodies: string[]): string {
  return JSON.stringify(Object.fromEntries(bodies.map((body) => [documentHash(body), body])));
}

/** The problems checking `text` (a manifest) meets, or [] when it loads. */
function problemsOf(text: string, check: ManifestCheck): readonly string[] {
  try {
    checkManifest(readManifest(text, FILE), FILE, check);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe("trusted documents at load", () => {
  let dir: string;
  let config: Config;
  let schema: GraphQLSchema;
  let check: ManifestCheck;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gta-trusted-"));
    config = loadConfig({ NODE_ENV: "production", JWT_SECRET_KEY: TEST_SECRET, DATA_DIR: dir }, dir);
    schema = await buildAppSchema();
    check = manifestCheckOf(config, schema);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads both formats to the same set, found by hash, by `sha256:` hash and by exact text", () => {
    const apollo = JSON.stringify({
      format: "apollo-persisted-query-manifest",
      version: 1,
      operations: [ME, ONE_POST].map((body) => ({ id: documentHash(body), name: "x", type: "query", body })),
    });
    for (const text of [apollo, codegenManifest(ME, ONE_POST)]) {
      const set = checkManifest(readManifest(text, FILE), FILE, check);
      assert.equal(set.size, 2);
      assert.equal(set.byId(documentHash(ME))?.body, ME);
      assert.equal(set.byId(`sha256:${documentHash(ONE_POST).toUpperCase()}`)?.body, ONE_POST);
      assert.equal(set.byText(ONE_POST)?.id, documentHash(ONE_POST));
      assert.equal(set.byText(`${ONE_POST} `), undefined, "only the exact text");
    }
  });

  it("records the cost of an operation no variable changes, and none for one whose lists a variable sizes", () => {
    const set = checkManifest(readManifest(codegenManifest(ME, ONE_POST, FEED), FILE), FILE, check);
    // me: an object (2) with id and username (1 each) inside the object `me` (2): 2 + 2 = 4.
    assert.deepEqual([...set.byText(ME)!.fixedCosts], [["Me", 4]]);
    assert.deepEqual([...set.byText(ONE_POST)!.fixedCosts], [["OnePost", 2 + 1 + 1 + 20]]);
    assert.equal(set.byText(FEED)!.fixedCosts.size, 0, "Feed costs 46 to 222,400: priced with each request");
  });

  it("refuses a document no request could run within QUERY_MAX_COST or SUBSCRIPTION_MAX_COST, naming the limit and the document", () => {
    assert.deepEqual(problemsOf(codegenManifest(ME, HUGE, WIDE_SUBSCRIPTION), check), [
      `TRUSTED_DOCUMENTS (${FILE}): document 2 (id ${documentHash(HUGE)}) can never run: ` +
        "its operation costs at least 222400, over QUERY_MAX_COST (12000)",
      `TRUSTED_DOCUMENTS (${FILE}): document 3 (id ${documentHash(WIDE_SUBSCRIPTION)}) can never run: ` +
        "its operation costs at least 122, over SUBSCRIPTION_MAX_COST (100)",
    ]);
    // The same documents with the limits raised load.
    const raised = { ...check, maxCost: { query: 222_400, subscription: 122 } };
    assert.deepEqual(problemsOf(codegenManifest(ME, HUGE, WIDE_SUBSCRIPTION), raised), []);
  });

  it("refuses, in production, a listed introspection query, and an id that is not the document's hash", () => {
    const text = JSON.stringify({
      [documentHash(ME)]: ONE_POST,
      [documentHash("{ __schema { queryType { name } } }")]: "{ __schema { queryType { name } } }",
    });
    const problems = problemsOf(text, check);
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0]!, /document 1 .* has an id that is not the SHA-256 of its text/);
    assert.match(problems[1]!, /document 2 .* does not validate: GraphQL introspection has been disabled/);
  });
});

describe("Apollo with the trusted document store", () => {
  const LISTED = "query Probe { __typename }";
  let schema: GraphQLSchema;
  let config: Config;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gta-trusted-"));
    config = loadConfig({ NODE_ENV: "development", DATA_DIR: dir }, dir);
    schema = await buildAppSchema();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** An Apollo like graphql/apollo.ts's, the set `listed` in force, counting the parses and validations it runs. */
  async function apolloWith(listed: TrustedDocument[]) {
    const trusted = { current: () => new TrustedDocumentSet(FILE, listed) };
    const seen = { parsed: 0, validated: 0 };
    const counter: ApolloServerPlugin<Context> = {
      requestDidStart: async () => ({
        parsingDidStart: async () => void seen.parsed++,
        validationDidStart: async () => void seen.validated++,
      }),
    };
    const rules = createOperationRules(config, undefined, (d, o) => fixedCostOf(trusted, d, o));
    const apollo = new ApolloServer<Context>({
      schema,
      persistedQueries: false,
      documentStore: createTrustedDocumentStore(trusted),
      validationRules: [...rules.validationRules],
      plugins: [counter, rules.plugin],
    });
    await apollo.start();
    const run = async (query: string) => {
      const { body } = await apollo.executeOperation({ query }, { contextValue: { ip: "127.0.0.1" } as Context });
      assert.equal(body.kind, "single");
      // As a client reads it (graphql-js answers objects without a prototype).
      return JSON.parse(JSON.stringify(body.singleResult)) as typeof body.singleResult;
    };
    return { apollo, seen, run };
  }

  it("runs a listed document without parsing or validating it; any other is parsed and validated once, then cached", async () => {
    const set = checkManifest(readManifest(codegenManifest(LISTED), FILE), FILE, manifestCheckOf(config, schema));
    const { apollo, seen, run } = await apolloWith([...set.documents()]);
    try {
      assert.deepEqual((await run(LISTED)).data, { __typename: "Query" });
      assert.deepEqual((await run(LISTED)).data, { __typename: "Query" });
      assert.deepEqual(seen, { parsed: 0, validated: 0 });
      assert.deepEqual((await run("{ t: __typename }")).data, { t: "Query" });
      assert.deepEqual(seen, { parsed: 1, validated: 1 });
      assert.deepEqual((await run("{ t: __typename }")).data, { t: "Query" });
      assert.deepEqual(
        seen,
        { parsed: 1, validated: 1 },
        "Apollo's cache of validated documents still serves the rest",
      );
    } finally {
      await apollo.stop();
    }
  });

  it("holds a listed operation to the cost recorded at load, not a new pricing", async () => {
    const [listed] = checkManifest(
      readManifest(codegenManifest(LISTED), FILE),
      FILE,
      manifestCheckOf(config, schema),
    ).documents();
    // The same document with a cost recorded as if it were far larger: the plugin believes the record.
    const { apollo, run } = await apolloWith([{ ...listed!, fixedCosts: new Map([["Probe", 99_999]]) }]);
    try {
      const result = await run(LISTED);
      assert.deepEqual(
        result.errors?.map((e) => [e.message, e.extensions?.code]),
        [["Query Cost limit of 12000 exceeded, found 99999.", "GRAPHQL_VALIDATION_FAILED"]],
      );
      assert.deepEqual(
        (await run("query Probe { __typename }\n")).data,
        { __typename: "Query" },
        "unlisted text is priced: 1",
      );
    } finally {
      await apollo.stop();
    }
  });
});
