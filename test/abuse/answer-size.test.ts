// Issue 22, finding 2: the cost counted values, not bytes, so 125 anonymous bytes asked for 1,600
// post bodies (32 MB of JSON, 192 MB when the bodies are U+0001, which JSON escapes as six bytes)
// and a few such requests ended the process. Now text is priced by its declared length (the
// amplification is refused before it runs) and no answer is built past RESPONSE_MAX_BYTES
// (refused with RESPONSE_TOO_LARGE), against the server as `npm start` runs it.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import pino from "pino";

import { openDatabase } from "../../src/db/database.js";
import { RESPONSE_TOO_LARGE_MESSAGE } from "../../src/errors.js";
import { loadConfig } from "../../src/load-config.js";
import { type AbuseServer, isAlive, startAbuseServer, startBystander } from "../helpers/abuse.js";
import { codes, gql, type GraphQLResponse, registerUser } from "../helpers/api.js";
import { TEST_SECRET } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const BODY_MAX = 20_000;
const POSTS = 40;
/** Issue 22's query, 125 bytes with a post id: 40 posts × 40 posts' bodies. */
const AMPLIFY = (id: string) =>
  `{ post(id: "${id}") { author { posts(first: 40) { author { posts(first: 40) { body } } } } } }`;
/** Within the cost limit (4 + 40 × (2 + 14 × 20) = 11,284), yet 560 bodies: 11 MB of plain text, 67 MB of U+0001. */
const ALIASED = (id: string) => {
  const bodies = Array.from({ length: 14 }, (_, i) => `b${i}: body`).join(" ");
  return `{ post(id: "${id}") { author { posts(first: 40) { ${bodies} } } } }`;
};

/**
 * Five pages of 100 posts' bodies, each page read on its own (so each holds its own copies of the
 * bodies): cost 5 × 100 × 22 = 11,000, within the limit, and about 8 MB of text built in memory
 * before the answer is measured and refused. Many at once are what QUERY_MAX_COST_IN_FLIGHT bounds.
 */
const PAGES = `{ ${Array.from({ length: 5 }, (_, i) => `p${i}: posts(first: 100) { body }`).join(" ")} }`;

/** Sends `count` copies of `query` at once and returns the answers (or the error of a failed request). */
async function concurrently(url: string, query: string, count: number): Promise<Array<GraphQLResponse | Error>> {
  return Promise.all(
    Array.from({ length: count }, () =>
      gql(url, query).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
    ),
  );
}

for (const kind of DATABASES) {
  describe(`answer size: text priced by its length, answers capped in bytes (${kind})`, () => {
    let abuse: AbuseServer;
    let plainPost: string;
    let controlPost: string;

    before(async () => {
      abuse = await startAbuseServer(kind, { CREATE_POST_MAX_PER_USER: "1000" });
      const url = abuse.server.graphqlUrl;
      // 40 posts of 20,000 characters through the API.
      const plain = await registerUser({ gql: (q, o) => gql(url, q, o) }, "prolific");
      for (let i = 0; i < POSTS; i++) {
        const res = await gql(url, `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
          token: plain.accessToken,
          variables: { input: { title: `plain ${i}`, body: "x".repeat(BODY_MAX) } },
        });
        assert.deepEqual(codes(res), [], JSON.stringify(res.body));
        plainPost = res.body.data.createPost.id;
      }
      // 40 posts of U+0001, which the API now refuses: stored straight into the database, as data
      // from before the rule would be.
      const control = await registerUser({ gql: (q, o) => gql(url, q, o) }, "controls");
      const refused = await gql(url, `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: control.accessToken,
        variables: { input: { title: "c", body: "\u0001".repeat(BODY_MAX) } },
      });
      assert.deepEqual(refused.body.errors?.[0]?.extensions?.fields, [
        {
          field: "body",
          rule: "hasNoControlCharacters",
          message:
            "must not contain control characters (U+0001 to U+001F) other than tab, line feed and carriage return",
        },
      ]);
      const config = loadConfig(
        { NODE_ENV: "test", JWT_SECRET_KEY: TEST_SECRET, ...abuse.database.env },
        abuse.database.dataDir,
      );
      const handle = openDatabase(config, pino({ level: "silent" }));
      try {
        const now = Date.now();
        const rows = Array.from({ length: POSTS }, (_, i) => {
          const at = new Date(now + i).toISOString();
          return {
            id: randomUUID(),
            author_id: control.userId,
            title: `control ${i}`,
            body: "\u0001".repeat(BODY_MAX),
            created_at: at,
            updated_at: at,
          };
        });
        await handle.db.insertInto("posts").values(rows).execute();
        controlPost = rows[0]!.id;
      } finally {
        await handle.close();
      }
    });

    after(async () => {
      await abuse?.stop();
    });

    it("refuses issue 22's 125-byte query with 400 GRAPHQL_VALIDATION_FAILED, 4 at a time, and keeps serving", async (t) => {
      const url = abuse.server.graphqlUrl;
      assert.equal(Buffer.byteLength(AMPLIFY(plainPost)), 125);
      const bystander = startBystander(abuse);
      const answers: Array<GraphQLResponse | Error> = [];
      const started = performance.now();
      for (let round = 0; round < 5; round++) {
        answers.push(...(await concurrently(url, AMPLIFY(plainPost), 4)));
        answers.push(...(await concurrently(url, AMPLIFY(controlPost), 4)));
      }
      const seconds = (performance.now() - started) / 1000;
      const report = await bystander.stop();
      t.diagnostic(
        `${answers.length} attacks in ${seconds.toFixed(1)} s; bystander ok ${report.ok} failed ${report.failed} ` +
          `p50 ${report.p50Ms.toFixed(1)} ms p99 ${report.p99Ms.toFixed(1)} ms; peak RSS ${report.peakRssMb.toFixed(0)} MB`,
      );
      for (const answer of answers) {
        if (answer instanceof Error) assert.fail(answer.message);
        assert.equal(answer.status, 400);
        assert.deepEqual(codes(answer), ["GRAPHQL_VALIDATION_FAILED"]);
        assert.equal(answer.body.errors![0]!.message, "Query Cost limit of 12000 exceeded, found 35364.");
        assert.equal(answer.body.data, undefined);
      }
      assert.ok(isAlive(abuse), "the server is still running");
      assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    });

    it("ends an answer within the cost but over RESPONSE_MAX_BYTES with 400 RESPONSE_TOO_LARGE, 4 at a time, without building it", async (t) => {
      const url = abuse.server.graphqlUrl;
      const bystander = startBystander(abuse);
      const answers: Array<GraphQLResponse | Error> = [];
      const started = performance.now();
      for (let round = 0; round < 3; round++) {
        answers.push(...(await concurrently(url, ALIASED(plainPost), 4)));
        answers.push(...(await concurrently(url, ALIASED(controlPost), 4)));
      }
      const seconds = (performance.now() - started) / 1000;
      const report = await bystander.stop();
      t.diagnostic(
        `${answers.length} answers of 11 MB (plain) and 67 MB (U+0001) asked for in ${seconds.toFixed(1)} s; ` +
          `bystander ok ${report.ok} failed ${report.failed} p50 ${report.p50Ms.toFixed(1)} ms ` +
          `p99 ${report.p99Ms.toFixed(1)} ms; peak RSS ${report.peakRssMb.toFixed(0)} MB`,
      );
      for (const answer of answers) {
        if (answer instanceof Error) assert.fail(answer.message);
        assert.equal(answer.status, 400);
        assert.deepEqual(answer.body, {
          errors: [{ message: RESPONSE_TOO_LARGE_MESSAGE, extensions: { code: "RESPONSE_TOO_LARGE" } }],
        });
      }
      assert.ok(isAlive(abuse), "the server is still running");
      assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
      // What fits is still answered: one author's 40 bodies of plain text, 800 KB.
      const fits = await gql(url, `{ post(id: "${plainPost}") { author { posts(first: 40) { body } } } }`);
      assert.equal(fits.status, 200);
      assert.equal(fits.body.data.post.author.posts.length, 40);
    });

    it("runs at most QUERY_MAX_COST_IN_FLIGHT of cost at once: 48 concurrent 8 MB operations are answered in turn or refused with 503", async (t) => {
      const url = abuse.server.graphqlUrl;
      const bystander = startBystander(abuse);
      const started = performance.now();
      const answers = await concurrently(url, PAGES, 48);
      const seconds = (performance.now() - started) / 1000;
      const report = await bystander.stop();
      const tally = new Map<string, number>();
      for (const answer of answers) {
        const key = answer instanceof Error ? answer.message : `${answer.status} ${codes(answer).join(",")}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }
      t.diagnostic(
        `48 operations of 8 MB in ${seconds.toFixed(1)} s: ${[...tally].map(([k, n]) => `${k} ×${n}`).join(", ")}; ` +
          `bystander ok ${report.ok} failed ${report.failed} p50 ${report.p50Ms.toFixed(1)} ms ` +
          `p99 ${report.p99Ms.toFixed(1)} ms; peak RSS ${report.peakRssMb.toFixed(0)} MB`,
      );
      for (const answer of answers) {
        if (answer instanceof Error) assert.fail(answer.message);
        if (answer.status === 503) {
          assert.deepEqual(codes(answer), ["SERVICE_UNAVAILABLE"]);
          assert.equal(answer.headers.get("retry-after"), "5");
        } else {
          assert.equal(answer.status, 400);
          assert.deepEqual(codes(answer), ["RESPONSE_TOO_LARGE"]);
        }
      }
      assert.ok(isAlive(abuse), "the server is still running");
      assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    });
  });
}
