// The TRUSTED_DOCUMENTS gate over HTTP POST and GET and over WebSocket, on SQLite and PostgreSQL: a
// listed document runs when named by its hash, its documentId (with or without sha256:) or its
// exact text; anything else gets the same 400 PERSISTED_QUERY_NOT_ALLOWED, counted and audited once
// a minute per IP; only an API token with OPERATIONS_ANY of a current ADMIN may send other
// documents, within the query limits. Without a manifest nothing changes, and a bare hash never runs.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { sql } from "kysely";

import { documentHash } from "../../src/graphql/trusted-documents.js";
import { DOCUMENT_NOT_ALLOWED_MESSAGE } from "../../src/http/document-gate.js";
import { rootToken, withRoot } from "../helpers/admin.js";
import { AUTH_PAYLOAD, login, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { postJson, type RawResponse, send } from "../helpers/http.js";
import { connect, Feed, untilLive } from "../helpers/ws.js";

// The sign-up and sign-in the helpers send, listed so that the suites' users can be made.
const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { ${AUTH_PAYLOAD} } }`;
const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { ${AUTH_PAYLOAD} } }`;
const ME = "query Me { me { id username } }";
const POSTS = "query Posts($first: Int!) { posts(first: $first) { id title } }";
const CREATE_TOKEN = `mutation CreateToken($input: CreateApiTokenInput!) {
  createApiToken(input: $input) { token apiToken { id } }
}`;
const SET_ROLES = `mutation SetRoles($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id } }`;
const CREATED = "subscription Created { postCreated { id title } }";
const CREATE_POST = `mutation CreatePost { createPost(input: { title: "listed", body: "hello" }) { id } }`;
const LISTED = [REGISTER, LOGIN, ME, POSTS, CREATE_TOKEN, SET_ROLES, CREATED, CREATE_POST];

const UNLISTED = "query Other { me { id } }";
const DEEP = `{ me { posts { author { posts { author { posts { author { posts { author { posts { id } } } } } } } } } } }`;

/** The manifest file, in graphql-codegen's format: `{ "<sha256>": "<document>" }`. */
function writeManifest(documents: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "gta-documents-"));
  const file = join(dir, "persisted-documents.json");
  writeFileSync(file, JSON.stringify(Object.fromEntries(documents.map((d) => [documentHash(d), d]))));
  return file;
}

const MANIFEST = writeManifest(LISTED);

/** What every refusal looks like, whatever was sent. */
const REFUSAL = {
  errors: [{ message: DOCUMENT_NOT_ALLOWED_MESSAGE, extensions: { code: "PERSISTED_QUERY_NOT_ALLOWED" } }],
};

function persisted(document: string) {
  return { persistedQuery: { version: 1, sha256Hash: documentHash(document) } };
}

function bearer(token?: string): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** A GET of /graphql with these parameters (objects as JSON), with the header Apollo's CSRF prevention asks for. */
function get(t: TestApp, parameters: Record<string, unknown>, token?: string): Promise<RawResponse> {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters))
    search.set(name, typeof value === "string" ? value : JSON.stringify(value));
  return send(`${t.url}?${search}`, { headers: { "apollo-require-preflight": "1", ...bearer(token) } });
}

function assertRefused(res: RawResponse, what: string): void {
  assert.equal(res.status, 400, `${what}: ${res.text}`);
  assert.deepEqual(res.json, REFUSAL, what);
}

/** gta_documents_total{kind} of the app. */
async function documents(t: TestApp, kind: "trusted" | "arbitrary" | "refused"): Promise<number> {
  const line = (await t.app.metrics.text())
    .split("\n")
    .find((l) => l.startsWith(`gta_documents_total{kind="${kind}"}`));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** The DOCUMENT_REFUSED rows, once the background writes have landed. */
async function refusedRows(t: TestApp): Promise<Array<{ ip: string; detail: string; user_id: string | null }>> {
  await sleep(100);
  const rows = await sql<{ ip: string; detail: string; user_id: string | null }>`
    select ip, detail, user_id from audit_events where type = 'DOCUMENT_REFUSED' order by id`.execute(
    t.app.database.db,
  );
  return rows.rows;
}

/** An ADMIN's API token with OPERATIONS_ANY (and PROFILE_READ), and the ADMIN's user id. */
async function operationsAnyToken(t: TestApp, username: string): Promise<{ token: string; userId: string }> {
  const admin = await rootToken(t);
  const user = await registerUser(t, username);
  const promoted = await postJson(
    t.url,
    { query: SET_ROLES, variables: { userId: user.userId, roles: ["ADMIN", "USER"] } },
    bearer(admin),
  );
  assert.equal(promoted.json.errors, undefined, promoted.text);
  const session = await login(t, username);
  const created = await postJson(
    t.url,
    { query: CREATE_TOKEN, variables: { input: { name: "ci", scopes: ["OPERATIONS_ANY", "PROFILE_READ"] } } },
    bearer(session.accessToken),
  );
  assert.equal(created.json.errors, undefined, created.text);
  return { token: created.json.data.createApiToken.token, userId: user.userId };
}

for (const kind of DATABASES) {
  describe(`the trusted documents gate over HTTP (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ NODE_ENV: "production", TRUSTED_DOCUMENTS: MANIFEST }));
    let user: { accessToken: string; userId: string };

    it("runs a listed document named by its hash, its documentId, sha256:documentId or its exact text, over POST", async () => {
      user = await registerUser(t, `gate-${kind}`);
      const id = documentHash(ME);
      const bodies = [
        { extensions: persisted(ME) },
        { documentId: id },
        { documentId: `sha256:${id}` },
        { query: ME },
        { query: ME, extensions: persisted(ME) },
        { query: ME, documentId: id, operationName: "Me" },
      ];
      for (const body of bodies) {
        const res = await postJson(t.url, body, bearer(user.accessToken));
        assert.equal(res.status, 200, `${JSON.stringify(body)}: ${res.text}`);
        assert.deepEqual(res.json, { data: { me: { id: user.userId, username: `gate-${kind}` } } });
      }
      const withVariables = await postJson(t.url, { documentId: documentHash(POSTS), variables: { first: 1 } });
      assert.equal(withVariables.status, 200, withVariables.text);
      assert.deepEqual(withVariables.json, { data: { posts: [] } });
    });

    it("runs a listed document over GET by hash, documentId and exact text", async () => {
      const requests = [
        { extensions: persisted(ME) },
        { documentId: `sha256:${documentHash(ME)}` },
        { query: ME },
        { extensions: { ...persisted(ME), other: 1 }, query: ME },
      ];
      for (const parameters of requests) {
        const res = await get(t, parameters, user.accessToken);
        assert.equal(res.status, 200, `${JSON.stringify(parameters)}: ${res.text}`);
        assert.deepEqual(res.json, { data: { me: { id: user.userId, username: `gate-${kind}` } } });
      }
    });

    it("refuses every other document with the same 400 body, session tokens and an ADMIN's session included", async () => {
      const admin = await rootToken(t);
      const probes: Array<[string, Record<string, unknown>, string | undefined]> = [
        ["unlisted text", { query: UNLISTED }, undefined],
        ["unlisted text with a session", { query: UNLISTED }, user.accessToken],
        ["unlisted text with an ADMIN's session", { query: UNLISTED }, admin],
        ["an unknown hash", { extensions: persisted(UNLISTED) }, undefined],
        ["an unknown documentId", { documentId: documentHash(UNLISTED) }, undefined],
        ["a listed hash with another text", { query: UNLISTED, extensions: persisted(ME) }, undefined],
        ["a listed documentId with another text", { query: `${ME} `, documentId: documentHash(ME) }, undefined],
        [
          "a listed hash and another documentId",
          { extensions: persisted(ME), documentId: documentHash(POSTS) },
          undefined,
        ],
        ["a hash that is not a string", { extensions: { persistedQuery: { sha256Hash: 1 } } }, undefined],
        ["a field-suggestion probe", { query: "{ mee }" }, undefined],
        ["introspection", { query: "{ __schema { types { name } } }" }, undefined],
        ["syntax garbage", { query: "}}}{{{ not graphql" }, undefined],
        ["a huge document", { query: `{ ${"me { id } ".repeat(20_000)} }` }, undefined],
        ["a query that is not a string", { query: 42 }, undefined],
      ];
      for (const [what, body, token] of probes) assertRefused(await postJson(t.url, body, bearer(token)), what);
      assertRefused(await get(t, { query: UNLISTED }), "unlisted text over GET");
      assertRefused(await get(t, { extensions: persisted(UNLISTED) }), "an unknown hash over GET");
      assertRefused(await get(t, { query: "{ mee }" }, admin), "a probe over GET with an ADMIN's session");
    });

    it("leaves a request that names no document to Apollo", async () => {
      const res = await postJson(t.url, { variables: {} });
      assert.equal(res.status, 400);
      assert.equal(res.json.errors[0].extensions.code, "BAD_REQUEST");
    });

    it("lets an invalid token's listed document reach the bearer check (401), but refuses its unlisted one first (400)", async () => {
      const listed = await postJson(t.url, { documentId: documentHash(ME) }, bearer("not-a-token"));
      assert.equal(listed.status, 401, listed.text);
      assert.equal(listed.json.errors[0].extensions.code, "UNAUTHENTICATED");
      assertRefused(await postJson(t.url, { query: UNLISTED }, bearer("not-a-token")), "an invalid token's unlisted");
    });

    it("lets an API token with OPERATIONS_ANY of an ADMIN send any document, within the query limits", async () => {
      const { token, userId } = await operationsAnyToken(t, `script-${kind}`);
      const res = await postJson(t.url, { query: UNLISTED }, bearer(token));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json, { data: { me: { id: userId } } });
      const listed = await postJson(t.url, { extensions: persisted(ME) }, bearer(token));
      assert.equal(listed.json.data.me.id, userId, listed.text);
      const deep = await postJson(t.url, { query: DEEP }, bearer(token));
      assert.equal(deep.status, 400, deep.text);
      assert.equal(deep.json.errors[0].extensions.code, "GRAPHQL_VALIDATION_FAILED");
      const overGet = await get(t, { query: UNLISTED }, token);
      assert.equal(overGet.status, 200, overGet.text);
    });

    it("refuses the OPERATIONS_ANY token once its owner is no longer an ADMIN", async () => {
      const { token, userId } = await operationsAnyToken(t, `demoted-${kind}`);
      assert.equal((await postJson(t.url, { query: UNLISTED }, bearer(token))).status, 200);
      const demoted = await postJson(
        t.url,
        { query: SET_ROLES, variables: { userId, roles: ["USER"] } },
        bearer(await rootToken(t)),
      );
      assert.equal(demoted.json.errors, undefined, demoted.text);
      assertRefused(await postJson(t.url, { query: UNLISTED }, bearer(token)), "a demoted owner's token");
      // Its listed documents still run: the token itself is valid.
      assert.equal((await postJson(t.url, { query: ME }, bearer(token))).json.data.me.id, userId);
    });

    it("refuses a non-ADMIN an OPERATIONS_ANY token (FORBIDDEN, reason SCOPE)", async () => {
      const res = await postJson(
        t.url,
        { query: CREATE_TOKEN, variables: { input: { name: "ci", scopes: ["OPERATIONS_ANY"] } } },
        bearer((await login(t, `gate-${kind}`)).accessToken),
      );
      assert.equal(res.json.errors[0].extensions.code, "FORBIDDEN", res.text);
      assert.equal(res.json.errors[0].extensions.reason, "SCOPE");
    });

    it("counts each document trusted, arbitrary or refused", async () => {
      const { token } = await operationsAnyToken(t, `counted-${kind}`);
      const before = { trusted: await documents(t, "trusted"), arbitrary: await documents(t, "arbitrary") };
      const refusedBefore = await documents(t, "refused");
      await postJson(t.url, { documentId: documentHash(ME) }, bearer(user.accessToken));
      await postJson(t.url, { query: ME }, bearer(token));
      await postJson(t.url, { query: UNLISTED }, bearer(token));
      await postJson(t.url, { query: UNLISTED });
      await postJson(t.url, { variables: {} });
      assert.equal(await documents(t, "trusted"), before.trusted + 2);
      assert.equal(await documents(t, "arbitrary"), before.arbitrary + 1);
      assert.equal(await documents(t, "refused"), refusedBefore + 1);
    });

    it("audits a flood of refusals from one IP as one DOCUMENT_REFUSED row, without the document; /healthz stays 200", async () => {
      const before = (await refusedRows(t)).length;
      const flood = Array.from({ length: 300 }, (_, i) => postJson(t.url, { query: `{ probe${i} }` }));
      const health = await send(t.url.replace("/graphql", "/healthz"));
      const answers = await Promise.all(flood);
      assert.equal(health.status, 200);
      for (const res of answers) assertRefused(res, "a flood's probe");
      const rows = await refusedRows(t);
      // The earlier tests' refusals opened the window: every refusal since lands in the same row.
      assert.equal(rows.length, Math.max(before, 1));
      assert.equal(rows[0]!.ip, "127.0.0.1");
      assert.equal(rows[0]!.user_id, null);
      assert.match(rows[0]!.detail, /^transport=http( count=\d+)?$/);
      assert.ok(!JSON.stringify(rows).includes("probe"), "no document in the audit row");
    });
  });

  describe(`the trusted documents gate over WebSocket (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ NODE_ENV: "production", TRUSTED_DOCUMENTS: MANIFEST }));

    it("starts a listed subscription named by hash, documentId or exact text; refuses anything else", async () => {
      const author = await registerUser(t, `ws-${kind}`);
      const connection = connect(t.url, { token: author.accessToken });
      await connection.connected;
      const payloads = [
        { query: "", extensions: persisted(CREATED) },
        { query: "", documentId: `sha256:${documentHash(CREATED)}` },
        { query: CREATED },
      ];
      const feeds = payloads.map((payload) => new Feed(connection.client, payload as never));
      for (const feed of feeds) {
        await untilLive(feed, () => postJson(t.url, { query: CREATE_POST }, bearer(author.accessToken)));
        assert.equal(feed.error, undefined, JSON.stringify(feed.error));
        assert.equal(feed.results[0].data.postCreated.title, "listed");
      }
      const probes = [
        { query: "subscription { postCreated { id } }" },
        { query: "", extensions: persisted(UNLISTED) },
        { query: "subscription { postCreated { id } }", extensions: persisted(CREATED) },
        { query: "{ __schema { types { name } } }" },
      ];
      const before = await documents(t, "refused");
      for (const payload of probes) {
        const feed = new Feed(connection.client, payload);
        await feed.until((f) => f.error !== undefined);
        assert.deepEqual(feed.error, REFUSAL.errors, JSON.stringify(payload));
      }
      assert.equal(await documents(t, "refused"), before + probes.length);
      const rows = await refusedRows(t);
      assert.deepEqual(
        rows.map((row) => row.detail.split(" ")[0]),
        ["transport=ws"],
      );
      for (const feed of feeds) feed.dispose();
      await connection.client.dispose();
    });

    it("lets a socket authenticated with an OPERATIONS_ANY token subscribe to any document", async () => {
      const { token } = await operationsAnyToken(t, `ws-script-${kind}`);
      const author = await registerUser(t, `ws-author-${kind}`);
      const connection = connect(t.url, { token });
      await connection.connected;
      const feed = new Feed(connection.client, { query: "subscription Any { postCreated { title } }" });
      await untilLive(feed, () => postJson(t.url, { query: CREATE_POST }, bearer(author.accessToken)));
      assert.equal(feed.error, undefined, JSON.stringify(feed.error));
      assert.deepEqual(feed.results[0], { data: { postCreated: { title: "listed" } } });
      feed.dispose();
      await connection.client.dispose();
    });
  });

  describe(`without a manifest (${kind})`, () => {
    const t = useTestApp(kind);

    it("runs any document and counts none", async () => {
      const res = await postJson(t.url, { query: UNLISTED });
      assert.equal(res.status, 200);
      assert.equal(res.json.errors[0].extensions.code, "UNAUTHENTICATED");
      assert.equal(await documents(t, "refused"), 0);
      assert.equal(await documents(t, "trusted"), 0);
    });

    it("never registers a document: a hash alone gets PERSISTED_QUERY_NOT_SUPPORTED, before and after it was sent with its text", async () => {
      const document = "query Registered { __typename }";
      const alone = await postJson(t.url, { extensions: persisted(document) });
      assert.equal(alone.json.errors[0].extensions.code, "PERSISTED_QUERY_NOT_SUPPORTED", alone.text);
      const both = await postJson(t.url, { query: document, extensions: persisted(document) });
      assert.equal(both.json.errors[0].extensions.code, "PERSISTED_QUERY_NOT_SUPPORTED", both.text);
      const again = await postJson(t.url, { extensions: persisted(document) });
      assert.equal(again.json.data, undefined);
      assert.equal(again.json.errors[0].extensions.code, "PERSISTED_QUERY_NOT_SUPPORTED", again.text);
    });
  });
}
