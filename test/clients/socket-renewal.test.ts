// The renewal recipe of docs/subscriptions.md, run against a real server with 2-second tokens: one
// socket outlives several tokens with no post missed and no reconnection; a logout elsewhere signs
// it out with SESSION_ENDED and it does not reconnect. The last suite keeps the docs' quote and the
// file identical.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

import { claimsOf, refresh, registerUser, type Tokens } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { wsUrlOf } from "../helpers/ws.js";
import { createRenewingClient } from "./recipes/graphql-ws-renewal.js";

const RECIPE = "test/clients/recipes/graphql-ws-renewal.ts";

describe("the socket renewal recipe (JWT_ACCESS_TOKEN_EXPIRES=2s)", () => {
  const t = useTestApp("sqlite", { env: { JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

  it("keeps one socket over four tokens with every post received, then signs out on SESSION_ENDED", async (tc) => {
    let tokens: Tokens = await registerUser(t, "recipe-renewal");
    const signedOut: string[] = [];
    const renewing = createRenewingClient(
      wsUrlOf(t.url),
      { accessToken: async () => tokens.accessToken, signOut: (reason) => signedOut.push(reason) },
      WebSocket,
    );
    let connections = 0;
    renewing.client.on("connected", () => connections++);
    const titles: string[] = [];
    let ended: unknown;
    renewing.client.subscribe<{ postCreated: { title: string } }>(
      { query: `subscription { postCreated { title } }` },
      {
        next: (result) => titles.push(result.data!.postCreated.title),
        error: (error) => (ended = error),
        complete: () => (ended ??= "complete"),
      },
    );
    const post = async (title: string) => {
      const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
        token: tokens.accessToken,
        variables: { input: { title, body: "." } },
      });
      assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
    };
    const until = async (done: () => boolean, what: string) => {
      for (const deadline = Date.now() + 3000; !done(); await sleep(20))
        if (Date.now() > deadline) throw new Error(`${what} did not happen`);
    };
    // Live once a post arrives (the subscription is not acknowledged by the protocol).
    for (let n = 0; titles.length === 0; n++) {
      await post(`warm-up ${n}`);
      await sleep(50);
    }
    const created: string[] = [];
    const firstExp = claimsOf(tokens.accessToken).exp * 1000;
    for (let i = 0; i < 4; i++) {
      const exp = claimsOf(tokens.accessToken).exp * 1000;
      await sleep(Math.max(0, exp - Date.now() - 700));
      tokens = await refresh(t, tokens.refreshToken);
      renewing.renew(tokens.accessToken);
      await sleep(Math.max(0, exp - Date.now() + 300));
      created.push(`post ${i}`);
      await post(`post ${i}`);
      await until(() => titles.includes(`post ${i}`), `post ${i}`);
    }
    assert.deepEqual(
      titles.filter((title) => !title.startsWith("warm-up")),
      created,
    );
    assert.equal(connections, 1, "never reconnected");
    const message = `recipe: one socket for ${Date.now() - firstExp} ms past its first token's exp, ${created.length} of ${created.length} posts`;
    tc.diagnostic(message);
    console.log(message);

    await t.gql(`mutation { logout }`, { token: tokens.accessToken });
    await until(() => signedOut.length > 0, "the sign-out");
    assert.deepEqual(signedOut, ["SESSION_ENDED"]);
    await until(() => ended !== undefined, "the subscription's end");
    await sleep(300);
    assert.equal(connections, 1, "no reconnection after the session ended");
    await renewing.client.dispose();
  });
});

describe("docs/subscriptions.md", () => {
  it(`quotes ${RECIPE} exactly as it is`, () => {
    let root = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(root, "package.json"))) root = dirname(root);
    const page = readFileSync(join(root, "docs/subscriptions.md"), "utf8");
    const quoted = [...page.matchAll(/^```ts\n\/\/ (test\/clients\/recipes\/[\w.-]+\.ts)\n([\s\S]*?)^```$/gm)];
    assert.deepEqual(
      quoted.map((m) => m[1]),
      [RECIPE],
    );
    assert.equal(quoted[0]![2], readFileSync(join(root, RECIPE), "utf8"));
  });
});
