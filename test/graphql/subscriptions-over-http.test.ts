import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SUBSCRIPTIONS_OVER_HTTP_MESSAGE } from "../../src/graphql/subscriptions-over-http.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { errorCodes, postJson, send } from "../helpers/http.js";

/** The log lines at error level or above, or that report an unexpected error. */
function errorLines(t: TestApp): string[] {
  return t.logs.filter((line) => {
    const entry = JSON.parse(line) as { level?: number; msg?: string };
    return (entry.level ?? 0) >= 50 || entry.msg === "unexpected error";
  });
}

for (const env of ["development", "production"] as const) {
  describe(`a subscription sent over HTTP (${env})`, () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: env } });

    for (const [name, body] of [
      ["subscription { __typename }", { query: "subscription { __typename }" }],
      [
        "a named subscription with a variable",
        { query: "subscription S($id: ID!) { __typename postUpdated(id: $id) { id } }", variables: { id: "1" } },
      ],
      [
        "a subscription chosen by operationName",
        { query: "query Q { __typename } subscription S { __typename }", operationName: "S" },
      ],
    ] as const) {
      it(`answers ${name} with 400 BAD_REQUEST pointing at WebSocket, and logs no error`, async () => {
        const before = errorLines(t).length;
        const res = await postJson(t.url, body);
        assert.equal(res.status, 400, res.text);
        assert.deepEqual(errorCodes(res), ["BAD_REQUEST"]);
        assert.equal(res.json.errors[0].message, SUBSCRIPTIONS_OVER_HTTP_MESSAGE);
        assert.match(res.json.errors[0].message, /WebSocket to \/graphql with the graphql-transport-ws protocol/);
        assert.equal("data" in res.json, false, "nothing ran");
        assert.equal(res.json.errors[0].extensions.stacktrace, undefined, "no stack trace");
        assert.deepEqual(errorLines(t).slice(before), [], "no error-level log line");
      });
    }

    it("still runs the query of a document that also holds a subscription", async () => {
      const res = await postJson(t.url, {
        query: "query Q { __typename } subscription S { __typename }",
        operationName: "Q",
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { data: { __typename: "Query" } });
    });

    it("runs the query of a document whose subscription spreads fragments of its own, keeping the query's fragments", async () => {
      const res = await postJson(t.url, {
        query: `query Q { posts { ...P } }
          subscription S { postUpdated(id: "1") { ...U } }
          fragment P on Post { id }
          fragment U on Post { ...V }
          fragment V on Post { title }`,
        operationName: "Q",
      });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { data: { posts: [] } });
    });

    it("keeps the locations of errors in the query when it blanks out a subscription", async () => {
      const res = await postJson(t.url, {
        query: `subscription S { postUpdated(id: "1") { id } }\nquery Q { nope }`,
        operationName: "Q",
      });
      assert.equal(res.status, 400, res.text);
      assert.deepEqual(res.json.errors[0].locations, [{ line: 2, column: 11 }]);
    });

    it("answers a subscription in a GET with 405 BAD_REQUEST (Apollo's own check), and logs no error", async () => {
      const before = errorLines(t).length;
      const res = await send(`${t.url}?query=${encodeURIComponent("subscription { __typename }")}`, {
        headers: { "apollo-require-preflight": "1" },
      });
      assert.equal(res.status, 405, res.text);
      assert.deepEqual(errorCodes(res), ["BAD_REQUEST"]);
      assert.deepEqual(errorLines(t).slice(before), []);
    });
  });
}
