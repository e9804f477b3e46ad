// The compiled lane over HTTP where it meets the other pieces: a list's `first` over its cap refused
// by the lane exactly as by Apollo and counted once (FIRST_MAX), and the documents of
// TRUSTED_DOCUMENTS served from their first request, the set in force followed across a reload.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { documentHash } from "../../src/graphql/trusted-documents.js";
import { DOCUMENT_NOT_ALLOWED_MESSAGE } from "../../src/http/document-gate.js";
import { postBody } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

/** A metric's value in the app's exposition (0 when the series is not there yet). */
async function metric(t: TestApp, series: string): Promise<number> {
  const line = (await t.app.metrics.text()).split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

const served = (t: TestApp) => metric(t, 'gta_compiled_lane_total{result="served"}');
const firstMax = (t: TestApp) => metric(t, 'gta_limit_refusals_total{limit="FIRST_MAX"}');

/** A manifest in graphql-codegen's format (`{ "<sha256>": "<document>" }`) of `documents`, written to `file`. */
function writeManifest(file: string, documents: readonly string[]): void {
  writeFileSync(file, JSON.stringify(Object.fromEntries(documents.map((d) => [documentHash(d), d]))));
}

const POSTS = "query Posts($first: Int!) { posts(first: $first) { id } }";
const ME = "query Me { me { id } }";
const TYPENAME = "query Name { __typename }";

for (const kind of DATABASES) {
  describe(`the compiled lane over HTTP (${kind})`, () => {
    const on = useTestApp(kind);
    const off = useTestApp(kind, { env: { GRAPHQL_COMPILED_LANE: "false" } });

    it("refuses posts(first: 101) as Apollo does, counting FIRST_MAX once per refusal", async () => {
      // Apollo runs the document once (first: 10), so that the lane knows it.
      assert.equal((await on.gql(POSTS, { variables: { first: 10 } })).status, 200);
      const lane = { served: await served(on), counted: await firstMax(on) };
      const fromLane = await on.gql(POSTS, { variables: { first: 101 } });
      assert.equal(await served(on), lane.served + 1, "the refusal was the lane's answer");
      assert.equal(await firstMax(on), lane.counted + 1, "counted once");

      await off.gql(POSTS, { variables: { first: 10 } });
      const apollo = { counted: await firstMax(off) };
      const fromApollo = await off.gql(POSTS, { variables: { first: 101 } });
      assert.equal(await firstMax(off), apollo.counted + 1);
      assert.deepEqual([fromLane.status, fromLane.body], [fromApollo.status, fromApollo.body]);
      assert.equal(fromLane.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
      assert.deepEqual(
        (fromLane.body.errors?.[0]?.extensions?.fields as Array<{ field: string; rule: string }>).map((f) => [
          f.field,
          f.rule,
        ]),
        [["first", "max"]],
      );
    });
  });

  describe(`the compiled lane and TRUSTED_DOCUMENTS (${kind})`, () => {
    const file = join(mkdtempSync(join(tmpdir(), "lane-documents-")), "persisted-documents.json");
    writeManifest(file, [POSTS, ME]);
    const t = useTestApp(kind, { env: { NODE_ENV: "production", TRUSTED_DOCUMENTS: file } });

    /** A request naming a listed document by its hash only, as a client sending trusted documents does. */
    const byHash = (document: string, variables?: Record<string, unknown>) =>
      postBody(t.url, {
        variables,
        extensions: { persistedQuery: { version: 1, sha256Hash: documentHash(document) } },
      });

    it("serves a listed query from its first request, and follows the set in force across a reload", async () => {
      const start = await served(t);
      const first = await byHash(POSTS, { first: 5 });
      assert.deepEqual([first.status, first.body], [200, { data: { posts: [] } }]);
      assert.equal(await served(t), start + 1, "no run through Apollo was needed first");

      // The manifest changes and is reloaded (what SIGHUP does): Name is listed, Posts no longer.
      writeManifest(file, [TYPENAME, ME]);
      t.app.trustedDocuments.reload();
      const name = await byHash(TYPENAME);
      assert.deepEqual([name.status, name.body], [200, { data: { __typename: "Query" } }]);
      assert.equal(await served(t), start + 2, "the reloaded set's document is served by the lane at once");
      const gone = await byHash(POSTS, { first: 5 });
      assert.equal(gone.status, 400);
      assert.deepEqual(gone.body, {
        errors: [{ message: DOCUMENT_NOT_ALLOWED_MESSAGE, extensions: { code: "PERSISTED_QUERY_NOT_ALLOWED" } }],
      });
      assert.equal(await served(t), start + 2);
    });
  });
}
