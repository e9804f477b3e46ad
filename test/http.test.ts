import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { BODY_LIMIT_BYTES } from "../src/http/server.js";
import { codes, listUsernames } from "./helpers/api.js";
import { useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";
import { originOf, postJson, send } from "./helpers/http.js";

const ADMIN = { username: "root", password: "root password 1" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function registerBody(username: string, password = "correct horse battery"): string {
  return JSON.stringify({
    query: `mutation { register(input: { username: "${username}", password: "${password}" }) { accessToken } }`,
  });
}

describe("the HTTP endpoint (sqlite, development)", () => {
  const t = useTestApp("sqlite", {
    env: { NODE_ENV: "development", ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password },
  });
  let base: string;
  let adminToken: string;

  before(async () => {
    base = originOf(t.url);
    adminToken = await t.login(ADMIN.username, ADMIN.password);
  });

  const usernames = async () => (await listUsernames(t, adminToken)).sort();

  describe("request bodies", () => {
    it("answers a body that is not valid JSON with 400 and code BAD_REQUEST", async () => {
      const res = await postJson(t.url, `{"query": "{ posts { id } }"`);
      assert.equal(res.status, 400);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(res.json, {
        errors: [{ message: "The request body is not valid JSON.", extensions: { code: "BAD_REQUEST" } }],
      });
    });

    it("answers a body one byte over 1 MB with 413 and code PAYLOAD_TOO_LARGE, without running it", async () => {
      const before = await usernames();
      const query = `mutation { register(input: { username: "toolarge", password: "correct horse battery" }) { accessToken } }`;
      const body = padded(query, BODY_LIMIT_BYTES + 1);
      assert.equal(Buffer.byteLength(body), 1024 * 1024 + 1);
      const res = await postJson(t.url, body);
      assert.equal(res.status, 413);
      assert.deepEqual(
        res.json.errors.map((e: any) => e.extensions.code),
        ["PAYLOAD_TOO_LARGE"],
      );
      assert.deepEqual(await usernames(), before);
    });

    it("accepts a body of exactly 1 MB", async () => {
      const body = padded(`{ posts(first: 1) { id } }`, BODY_LIMIT_BYTES);
      assert.equal(Buffer.byteLength(body), 1024 * 1024);
      const res = await postJson(t.url, body);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { data: { posts: [] } });
    });

    it("refuses array batching with 400 BAD_REQUEST and runs none of the operations", async () => {
      const before = await usernames();
      const res = await postJson(
        t.url,
        JSON.stringify([JSON.parse(registerBody("batched1")), JSON.parse(registerBody("batched2"))]),
      );
      assert.equal(res.status, 400);
      assert.deepEqual(
        res.json.errors.map((e: any) => e.extensions.code),
        ["BAD_REQUEST"],
      );
      assert.deepEqual(await usernames(), before);
    });
  });

  describe("CSRF prevention", () => {
    for (const contentType of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=xyz",
    ]) {
      it(`refuses a POST sent as ${contentType.split(";")[0]} without a preflight header with 400, creating no user`, async () => {
        const before = await usernames();
        const res = await send(t.url, {
          method: "POST",
          headers: { "content-type": contentType },
          body: registerBody("csrfvictim"),
        });
        assert.equal(res.status, 400);
        const errors = res.json.errors;
        assert.deepEqual(
          errors.map((e: any) => e.extensions.code),
          ["BAD_REQUEST"],
        );
        assert.match(errors[0].message, /Cross-Site Request Forgery/);
        assert.deepEqual(await usernames(), before);
      });
    }

    it("refuses a GET query without a preflight header with 400, and answers it with apollo-require-preflight", async () => {
      const url = `${t.url}?query=${encodeURIComponent("{ posts(first: 1) { id } }")}`;
      const refused = await send(url);
      assert.equal(refused.status, 400);
      assert.deepEqual(
        refused.json.errors.map((e: any) => e.extensions.code),
        ["BAD_REQUEST"],
      );

      const allowed = await send(url, { headers: { "apollo-require-preflight": "true" } });
      assert.equal(allowed.status, 200);
      assert.deepEqual(allowed.json, { data: { posts: [] } });
    });

    it("refuses a mutation over GET with 405 and Allow: POST, even with a preflight header, creating no user", async () => {
      const before = await usernames();
      const query = `mutation { register(input: { username: "viaget", password: "correct horse battery" }) { accessToken } }`;
      const url = `${t.url}?query=${encodeURIComponent(query)}`;

      const withoutHeader = await send(url);
      assert.equal(withoutHeader.status, 400);

      const res = await send(url, { headers: { "apollo-require-preflight": "true" } });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "POST");
      assert.deepEqual(
        res.json.errors.map((e: any) => e.extensions.code),
        ["BAD_REQUEST"],
      );
      assert.deepEqual(await usernames(), before);
    });
  });

  describe("GraphQL request errors", () => {
    it("answers a syntax error with 400 and code GRAPHQL_PARSE_FAILED", async () => {
      const res = await t.gql(`{ posts { id `);
      assert.equal(res.status, 400);
      assert.deepEqual(codes(res), ["GRAPHQL_PARSE_FAILED"]);
      assert.equal(res.body.data, undefined);
    });

    it("answers an unknown field with 400 and code GRAPHQL_VALIDATION_FAILED, suggesting the right name in development", async () => {
      const res = await t.gql(`{ posts { titel } }`);
      assert.equal(res.status, 400);
      assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
      assert.equal(res.body.errors![0]!.message, `Cannot query field "titel" on type "Post". Did you mean "title"?`);
    });
  });

  describe("health and readiness", () => {
    it("answers GET /healthz with 200 {status: ok}", async () => {
      const res = await send(`${base}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { status: "ok" });
    });

    it("answers GET /readyz with 200 {status: ready} while the database answers", async () => {
      const res = await send(`${base}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { status: "ready" });
    });
  });

  describe("request ids", () => {
    it("puts a fresh x-request-id on every response, success or failure, and ignores one sent by the client", async () => {
      const responses = await Promise.all([
        postJson(t.url, JSON.stringify({ query: "{ posts { id } }" }), { "x-request-id": "chosen-by-client" }),
        postJson(t.url, JSON.stringify({ query: "{ me { id } }" })),
        postJson(t.url, "{not json"),
        postJson(t.url, padded("{ posts { id } }", BODY_LIMIT_BYTES + 10)),
        postJson(t.url, JSON.stringify({ query: "{ posts { id } }" }), { authorization: "Bearer not.a.token" }),
        send(t.url, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" }),
        send(`${base}/healthz`),
        send(`${base}/readyz`),
        send(`${base}/no-such-route`),
        send(t.url, { headers: { accept: "text/html" } }),
      ]);
      assert.deepEqual(
        responses.map((r) => r.status),
        [200, 200, 400, 413, 401, 400, 200, 200, 404, 200],
      );
      const ids = responses.map((r) => r.headers.get("x-request-id") ?? "");
      for (const id of ids) assert.match(id, UUID);
      assert.equal(new Set(ids).size, ids.length, "every request has its own id");
    });

    it("writes the response's x-request-id into the log lines of that request", async () => {
      const res = await postJson(t.url, JSON.stringify({ query: "{ posts { id } }" }));
      const id = res.headers.get("x-request-id")!;
      const lines = t.logs.map((line) => JSON.parse(line)).filter((entry) => entry.reqId === id);
      assert.ok(
        lines.some((entry) => entry.res?.statusCode === 200),
        "the completed request is logged with its id",
      );
    });
  });

  describe("development tools", () => {
    it("serves Apollo's landing page as HTML to a browser GET of /graphql", async () => {
      const res = await send(t.url, { headers: { accept: "text/html" } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(res.text, /^\s*<!DOCTYPE html>/i);
      assert.match(res.text, /apollographql\.com/);
    });

    it("answers introspection queries", async () => {
      const res = await t.gql(
        `{ __schema { queryType { name } mutationType { name } } __type(name: "RegisterInput") { inputFields { name } } }`,
      );
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.data, {
        __schema: { queryType: { name: "Query" }, mutationType: { name: "Mutation" } },
        __type: { inputFields: [{ name: "username" }, { name: "password" }, { name: "email" }, { name: "useCookie" }] },
      });
    });
  });

  describe("logs", () => {
    it("never contain a password sent to register or login, nor an issued or presented token", async () => {
      const registerPassword = "Reg1stered-Secret-Pass";
      const literalPassword = "L1teral-Secret-Pass";
      const wrongPassword = "Wr0ng-Secret-Pass";
      const refusedPassword = `R3fused-${"y".repeat(130)}`;
      const forged = `${t.app.tokens.signAccessToken({ userId: "x", roles: [], sessionId: "y", fresh: true }).token.slice(0, -4)}AAAA`;

      const registered = await t.gql(
        `mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`,
        {
          variables: { input: { username: "logwatcher", password: registerPassword } },
        },
      );
      const issued: string = registered.body.data.register.accessToken;
      const secondUser = await t.gql(
        `mutation { register(input: { username: "logwatcher2", password: "${literalPassword}" }) { accessToken } }`,
      );
      const loggedIn = await t.gql(
        `mutation { login(input: { username: "logwatcher2", password: "${literalPassword}" }) { accessToken } }`,
      );
      const wrong = await t.gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
        variables: { input: { username: "logwatcher", password: wrongPassword } },
      });
      const refused = await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`, {
        variables: { input: { username: "logwatcher3", password: refusedPassword } },
      });
      const me = await t.gql(`{ me { id } }`, { token: issued });
      const rejected = await t.gql(`{ me { id } }`, { token: forged });
      const malformed = await postJson(
        t.url,
        `{"query": "mutation { login(input: {username: \\"logwatcher\\", password: \\"${wrongPassword}\\"}) { accessToken } }"`,
      );

      assert.deepEqual(codes(secondUser), []);
      assert.deepEqual(codes(wrong), ["UNAUTHENTICATED"]);
      assert.deepEqual(codes(refused), ["BAD_USER_INPUT"]);
      assert.equal(me.body.data.me.id, registered.body.data.register.user.id);
      assert.equal(rejected.status, 401);
      assert.equal(malformed.status, 400);

      const secrets = {
        registerPassword,
        literalPassword,
        wrongPassword,
        refusedPassword: refusedPassword.slice(0, 20),
        issued,
        issuedSignature: issued.split(".")[2]!,
        loginToken: loggedIn.body.data.login.accessToken as string,
        forged,
      };
      assert.ok(t.logs.length > 20, "the requests above were logged");
      const all = t.logs.join("\n");
      for (const [name, secret] of Object.entries(secrets)) {
        assert.ok(!all.includes(secret), `the logs contain ${name}`);
      }
    });
  });
});

for (const kind of DATABASES) {
  describe(`readiness when the database goes away (${kind})`, () => {
    const t = useTestApp(kind);
    let base: string;
    before(async () => {
      base = originOf(t.url);
    });

    it("answers /readyz with 503 {status: unavailable} once the database is closed, while /healthz stays 200", async () => {
      const ready = await send(`${base}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.json, { status: "ready" });

      await t.app.database.close();

      const unavailable = await send(`${base}/readyz`);
      assert.equal(unavailable.status, 503);
      assert.deepEqual(unavailable.json, { status: "unavailable" });
      assert.match(unavailable.headers.get("x-request-id") ?? "", UUID);

      const healthy = await send(`${base}/healthz`);
      assert.equal(healthy.status, 200);
      assert.deepEqual(healthy.json, { status: "ok" });
    });
  });
}

/** A JSON body of exactly `bytes` bytes running `query`, padded with a GraphQL comment. */
function padded(query: string, bytes: number): string {
  const empty = JSON.stringify({ query: `#\n${query}` });
  const body = JSON.stringify({ query: `#${"p".repeat(bytes - Buffer.byteLength(empty))}\n${query}` });
  assert.equal(Buffer.byteLength(body), bytes);
  return body;
}
