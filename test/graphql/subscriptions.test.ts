import assert from "node:assert/strict";
import { describe, it } from "node:test";

import WebSocket from "ws";

import { SINGLE_AUTH_FIELD_MESSAGE } from "../../src/graphql/single-auth-field.rule.js";
import { CONNECTION_INIT_TIMEOUT_MS } from "../../src/http/ws/connections.js";
import { ONLY_SUBSCRIPTIONS_MESSAGE, tooManySubscriptionsMessage } from "../../src/http/ws/operation.js";
import { DEFAULT_SUBSCRIPTION_LIMITS } from "../../src/http/ws/server.js";
import { registerUser } from "../helpers/api.js";
import { startTestApp, TEST_SECRET, type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { hmac, jws, payloadOf } from "../helpers/jwt.js";
import { connect, Feed, untilLive, wsUrlOf } from "../helpers/ws.js";

const POST_FIELDS = "id title body author { username }";
const MAX_SUBSCRIPTIONS_PER_CONNECTION = DEFAULT_SUBSCRIPTION_LIMITS.maxSubscriptionsPerConnection;

async function createPost(t: TestApp, token: string, title: string): Promise<{ id: string; title: string }> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }`, {
    token,
    variables: { input: { title, body: `body of ${title}` } },
  });
  assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
  return res.body.data.createPost;
}

async function updatePost(t: TestApp, token: string, id: string, title: string): Promise<void> {
  const res = await t.gql(
    `mutation($id: ID!, $title: String!) { updatePost(id: $id, input: { title: $title }) { id } }`,
    {
      token,
      variables: { id, title },
    },
  );
  assert.ok(res.body.data?.updatePost, JSON.stringify(res.body));
}

/** The one error of a refused subscription: graphql-ws's `error` message, or a result with errors. */
function onlyError(feed: Feed): { message: string; extensions: Record<string, unknown> } {
  const errors = (feed.error ?? feed.results[0]?.errors) as Array<{ message: string; extensions: any }> | undefined;
  assert.ok(errors, `expected an error, got ${JSON.stringify({ results: feed.results, error: feed.error })}`);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  return errors[0]!;
}

for (const kind of DATABASES) {
  describe(`subscriptions over WebSocket (${kind})`, () => {
    const t = useTestApp(kind);

    it("delivers postUpdated to an anonymous connection when the post is changed over HTTP", async () => {
      const author = await registerUser(t, "sub-author");
      const post = await createPost(t, author.accessToken, "first");
      const ws = connect(t.url);
      try {
        await ws.connected;
        const feed = new Feed(ws.client, {
          query: `subscription($id: ID!) { postUpdated(id: $id) { ${POST_FIELDS} } }`,
          variables: { id: post.id },
        });
        let round = 0;
        await untilLive(feed, () => updatePost(t, author.accessToken, post.id, `edit ${++round}`));
        assert.deepEqual(feed.results[0], {
          data: {
            postUpdated: { id: post.id, title: "edit 1", body: "body of first", author: { username: "sub-author" } },
          },
        });
        // Another post's changes do not reach it.
        const other = await createPost(t, author.accessToken, "other");
        await updatePost(t, author.accessToken, other.id, "other edit");
        await updatePost(t, author.accessToken, post.id, "final");
        const next = await feed.next();
        assert.equal(next.data.postUpdated.title, "final");
        feed.dispose();
      } finally {
        await ws.client.dispose();
      }
    });

    it("refuses postCreated to an anonymous connection with UNAUTHENTICATED, reason NOT_SIGNED_IN", async () => {
      const ws = connect(t.url);
      try {
        const feed = new Feed(ws.client, { query: `subscription { postCreated { id } }` });
        await feed.until((f) => f.completed || f.error !== undefined);
        const error = onlyError(feed);
        assert.equal(error.extensions.code, "UNAUTHENTICATED");
        assert.equal(error.extensions.reason, "NOT_SIGNED_IN");
        assert.equal(error.extensions.http, undefined, "no HTTP details over WebSocket");
      } finally {
        await ws.client.dispose();
      }
    });

    it("delivers postCreated to a signed-in connection, with the post created over HTTP", async () => {
      const reader = await registerUser(t, "sub-reader");
      const writer = await registerUser(t, "sub-writer");
      const ws = connect(t.url, { token: reader.accessToken });
      try {
        await ws.connected;
        const feed = new Feed(ws.client, { query: `subscription { postCreated { ${POST_FIELDS} } }` });
        const created: string[] = [];
        await untilLive(feed, async () => created.push((await createPost(t, writer.accessToken, "news")).id));
        const first = feed.results[0].data.postCreated;
        assert.ok(created.includes(first.id));
        assert.deepEqual(
          { ...first, id: undefined },
          {
            id: undefined,
            title: "news",
            body: "body of news",
            author: { username: "sub-writer" },
          },
        );
        const latest = await createPost(t, writer.accessToken, "later");
        const next = await feed.next();
        // Posts created while waiting for the first event may still arrive before it.
        if (next.data.postCreated.id !== latest.id)
          await feed.until((f) => f.results.some((r) => r.data.postCreated.id === latest.id));
        feed.dispose();
      } finally {
        await ws.client.dispose();
      }
    });

    it("accepts the token under connectionParams.Authorization too", async () => {
      const user = await registerUser(t, "sub-capital");
      const ws = connect(t.url, { connectionParams: { Authorization: `Bearer ${user.accessToken}` } });
      try {
        await ws.connected;
        const feed = new Feed(ws.client, { query: `subscription { postCreated { id } }` });
        await untilLive(feed, () => createPost(t, user.accessToken, "capital"));
        assert.ok(feed.results[0].data.postCreated.id);
      } finally {
        await ws.client.dispose();
      }
    });

    for (const [name, params] of [
      ["a forged token (signed with another secret)", (token: string) => ({ authorization: `Bearer ${forge(token)}` })],
      ["a malformed header", () => ({ authorization: "Token abc" })],
      ["a header that is not a string", () => ({ authorization: 42 })],
      ["an empty header", () => ({ authorization: "" })],
    ] as const) {
      it(`closes the connection with 4403 TOKEN_INVALID for ${name}`, async () => {
        const user = await registerUser(t, `sub-forged-${name.length}`);
        const ws = connect(t.url, { connectionParams: params(user.accessToken) });
        const closed = await ws.closed;
        assert.equal(closed.code, 4403);
        assert.equal(closed.reason, "TOKEN_INVALID");
      });
    }

    it("answers a document over the query limits with GRAPHQL_VALIDATION_FAILED, and keeps the connection", async () => {
      const ws = connect(t.url);
      try {
        const deep = new Feed(ws.client, {
          query: `subscription($id: ID!) { postUpdated(id: $id) { author { posts { author { posts { author { posts { author { posts { author { posts { author { posts { id } } } } } } } } } } } } } }`,
          variables: { id: "1" },
        });
        await deep.until((f) => f.error !== undefined);
        assert.equal(onlyError(deep).extensions.code, "GRAPHQL_VALIDATION_FAILED");
        assert.match(onlyError(deep).message, /depth/i);

        const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: id`).join(" ");
        const aliased = new Feed(ws.client, {
          query: `subscription { postUpdated(id: "1") { ${aliases} } }`,
        });
        await aliased.until((f) => f.error !== undefined);
        assert.equal(onlyError(aliased).extensions.code, "GRAPHQL_VALIDATION_FAILED");
        assert.match(onlyError(aliased).message, /alias/i);

        const costly = new Feed(ws.client, {
          query: `subscription($n: Int!) { postUpdated(id: "1") { author { posts(first: $n) { author { posts(first: $n) { id title body } } } } } }`,
          variables: { n: 100 },
        });
        await costly.until((f) => f.error !== undefined);
        assert.equal(onlyError(costly).extensions.code, "GRAPHQL_VALIDATION_FAILED");
        assert.match(onlyError(costly).message, /Cost limit/);

        const unknown = new Feed(ws.client, { query: `subscription { postDeleted { id } }` });
        await unknown.until((f) => f.error !== undefined);
        assert.equal(onlyError(unknown).extensions.code, "GRAPHQL_VALIDATION_FAILED");

        const broken = new Feed(ws.client, { query: `subscription {` });
        await broken.until((f) => f.error !== undefined);
        assert.equal(onlyError(broken).extensions.code, "GRAPHQL_PARSE_FAILED");

        const query = new Feed(ws.client, { query: `{ posts { id } }` });
        await query.until((f) => f.error !== undefined);
        assert.deepEqual(onlyError(query), {
          message: ONLY_SUBSCRIPTIONS_MESSAGE,
          extensions: { code: "BAD_REQUEST" },
        });

        // Still usable.
        const fine = new Feed(ws.client, { query: `subscription { postUpdated(id: "1") { id } }` });
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(fine.error, undefined);
        assert.equal(fine.completed, false);
      } finally {
        await ws.client.dispose();
      }
    });

    it("validates with HTTP's own rules: two credential mutations in one operation are refused as over HTTP", async () => {
      const ws = connect(t.url);
      try {
        const login = `login(input: { username: "u", password: "p" }) { accessToken }`;
        const twice = new Feed(ws.client, { query: `mutation { a: ${login} b: ${login} }` });
        await twice.until((f) => f.error !== undefined);
        assert.equal(onlyError(twice).extensions.code, "GRAPHQL_VALIDATION_FAILED");
        assert.equal(onlyError(twice).message, SINGLE_AUTH_FIELD_MESSAGE);
      } finally {
        await ws.client.dispose();
      }
    });

    it(`refuses subscription number ${MAX_SUBSCRIPTIONS_PER_CONNECTION + 1} on one connection, and accepts one after another completes`, async () => {
      const ws = connect(t.url);
      try {
        const feeds = Array.from(
          { length: MAX_SUBSCRIPTIONS_PER_CONNECTION },
          (_, i) => new Feed(ws.client, { query: `subscription { postUpdated(id: "${i}") { id } }` }),
        );
        const extra = new Feed(ws.client, { query: `subscription { postUpdated(id: "extra") { id } }` });
        await extra.until((f) => f.error !== undefined);
        assert.deepEqual(onlyError(extra), {
          message: tooManySubscriptionsMessage(MAX_SUBSCRIPTIONS_PER_CONNECTION),
          extensions: { code: "BAD_REQUEST" },
        });
        for (const feed of feeds) assert.equal(feed.error, undefined);

        feeds[0]!.dispose();
        // The server learns of the completion asynchronously: retry until there is room again.
        let accepted = false;
        for (let attempt = 0; attempt < 50 && !accepted; attempt++) {
          const retry = new Feed(ws.client, { query: `subscription { postUpdated(id: "again") { id } }` });
          await new Promise((resolve) => setTimeout(resolve, 50));
          accepted = retry.error === undefined;
          if (!accepted) retry.dispose();
        }
        assert.ok(accepted, "a subscription is accepted again once one completed");
      } finally {
        await ws.client.dispose();
      }
    });

    it("describes the guards in the schema: postCreated requires signing in, postUpdated is public", () => {
      const fields = t.app.schema.getSubscriptionType()!.getFields();
      assert.match(fields.postCreated!.description!, /Requires: signed in; scope PROFILE_READ\.$/);
      assert.doesNotMatch(fields.postUpdated!.description!, /Requires:/);
      assert.match(fields.postUpdated!.description!, /Public\./);
    });
  });
}

describe("the WebSocket transport", () => {
  it(`closes a connection that sends no connection_init within ${CONNECTION_INIT_TIMEOUT_MS} ms with 4408`, async () => {
    const t = await startTestApp("sqlite");
    try {
      const socket = new WebSocket(wsUrlOf(t.url), "graphql-transport-ws");
      const openedAt = await new Promise<number>((resolve) => socket.once("open", () => resolve(performance.now())));
      const [code, elapsed] = await new Promise<[number, number]>((resolve) =>
        socket.once("close", (c) => resolve([c, performance.now() - openedAt])),
      );
      assert.equal(code, 4408);
      assert.ok(elapsed >= CONNECTION_INIT_TIMEOUT_MS - 100, `closed after ${Math.round(elapsed)} ms`);
    } finally {
      await t.close();
      await t.database.drop();
    }
  });

  it("refuses a WebSocket upgrade on any other path with 404", async () => {
    const t = await startTestApp("sqlite");
    try {
      const socket = new WebSocket(wsUrlOf(t.url).replace("/graphql", "/elsewhere"), "graphql-transport-ws");
      socket.on("error", () => undefined);
      const status = await new Promise<number>((resolve) =>
        socket.once("unexpected-response", (request, response) => {
          request.destroy();
          resolve(response.statusCode ?? 0);
        }),
      );
      assert.equal(status, 404);
    } finally {
      await t.close();
      await t.database.drop();
    }
  });

  it("closes every connection with 1001 on shutdown, and the app then closes", async () => {
    const t = await startTestApp("sqlite");
    try {
      const user = await registerUser(t, "sub-shutdown");
      const anonymous = connect(t.url);
      const signedIn = connect(t.url, { token: user.accessToken });
      await Promise.all([anonymous.connected, signedIn.connected]);
      new Feed(signedIn.client, { query: `subscription { postCreated { id } }` });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const closing = t.close();
      const [a, b] = await Promise.all([anonymous.closed, signedIn.closed]);
      assert.equal(a.code, 1001);
      assert.equal(b.code, 1001);
      await closing;
    } finally {
      await t.database.drop();
    }
  });
});

/** The same claims as `token`, signed with a secret that is not the app's. */
function forge(token: string): string {
  const secret = TEST_SECRET.split("").reverse().join("");
  return jws({ alg: "HS256", typ: "JWT" }, payloadOf(token), hmac(secret));
}
