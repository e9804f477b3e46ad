// Renewing a socket's token in-band (a graphql-transport-ws `ping` whose payload holds
// `authorization`), over real WebSockets on each database: the socket outlives its first token and
// its feed goes on; anything but a valid token of the same session closes it with 4403 and HTTP's
// reason; the pong never carries a token; WS_MAX_RENEWALS_PER_MINUTE refuses a flood.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import WebSocket from "ws";

import { WS_MAX_RENEWALS_PER_MINUTE } from "../../src/http/ws/token.js";
import { claimsOf, login, refresh, registerUser, type Tokens } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { tamperedSignature } from "../helpers/jwt.js";
import { connect, Feed, untilLive, wsUrlOf } from "../helpers/ws.js";

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function createPost(t: TestApp, token: string, title: string): Promise<void> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    token,
    variables: { input: { title, body: `body of ${title}` } },
  });
  assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
}

async function createApiToken(t: TestApp, sessionToken: string): Promise<string> {
  const res = await t.gql(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`, {
    token: sessionToken,
    variables: { input: { name: "feed", scopes: ["PROFILE_READ"] } },
  });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data.createApiToken.token;
}

/** A counter of the app's metrics, 0 when it has no sample yet. */
async function metric(t: TestApp, sample: string): Promise<number> {
  const line = (await t.app.metrics.text()).split("\n").find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** The pong a renewal with `token` should get: the new token's expiry, and nothing else. */
const pongFor = (token: string) => ({ expiresAt: new Date(claimsOf(token).exp * 1000).toISOString() });

function report(tc: { diagnostic(message: string): void }, message: string): void {
  tc.diagnostic(message);
  console.log(message);
}

/** A socket of the protocol without graphql-ws's client, to see the server's exact messages. */
async function rawSocket(t: TestApp) {
  const socket = new WebSocket(wsUrlOf(t.url), "graphql-transport-ws");
  const messages: string[] = [];
  let notify = () => {};
  socket.on("message", (data: Buffer) => {
    messages.push(data.toString("utf8"));
    notify();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
  const next = async (): Promise<string> => {
    const seen = messages.length;
    while (messages.length === seen) await new Promise<void>((resolve) => (notify = resolve));
    return messages[seen]!;
  };
  const send = (message: unknown) => socket.send(JSON.stringify(message));
  return { socket, closed, next, send };
}

for (const kind of DATABASES) {
  describe(`renewing a socket's token, short tokens (${kind}, JWT_ACCESS_TOKEN_EXPIRES=2s)`, () => {
    const t = useTestApp(kind, { env: { JWT_ACCESS_TOKEN_EXPIRES: "2s" } });

    it("keeps a socket renewed before each exp open past it, its feed live with no post missed, then closes it at the last exp", async (tc) => {
      let tokens: Tokens = await registerUser(t, "renewing");
      const firstExp = claimsOf(tokens.accessToken).exp * 1000;
      const ws = connect(t.url, { token: tokens.accessToken });
      await ws.connected;
      const feed = new Feed(ws.client, { query: `subscription { postCreated { title } }` });
      const created: string[] = [];
      let warmUps = 0;
      await untilLive(feed, () => createPost(t, tokens.accessToken, `warm-up ${warmUps++}`));
      const received = () => feed.results.map((r) => r.data?.postCreated?.title as string);
      const RENEWALS = 5;
      for (let i = 0; i < RENEWALS; i++) {
        const exp = claimsOf(tokens.accessToken).exp * 1000;
        await sleep(Math.max(0, exp - Date.now() - 700));
        tokens = await refresh(t, tokens.refreshToken);
        assert.deepEqual(await ws.ping(bearer(tokens.accessToken)), pongFor(tokens.accessToken));
        // Past the old token's exp: still open, and posts still arrive.
        await sleep(Math.max(0, exp - Date.now() + 300));
        for (const n of [1, 2]) {
          const title = `renewal ${i} post ${n}`;
          await createPost(t, tokens.accessToken, title);
          created.push(title);
        }
        await feed.until(() => created.every((title) => received().includes(title)), 2000);
      }
      assert.ok(Date.now() > firstExp + 4000, "open for two more token lifetimes past the first token's exp");
      // Every post arrived, once each.
      const live = received().filter((title) => !title.startsWith("warm-up"));
      assert.deepEqual(live, created);
      report(
        tc,
        `[${kind}] ${RENEWALS} renewals: open ${Date.now() - firstExp} ms past the first token's exp, ${live.length} of ${created.length} posts received`,
      );

      // No renewal now: closed at the last token's exp.
      const lastExp = claimsOf(tokens.accessToken).exp * 1000;
      const closed = await ws.closed;
      const lateMs = Math.round(Date.now() - lastExp);
      assert.equal(closed.code, 4403);
      assert.equal(closed.reason, "TOKEN_EXPIRED");
      report(tc, `[${kind}] no renewal: closed 4403 TOKEN_EXPIRED ${lateMs} ms after the last token's exp`);
      assert.ok(lateMs >= -50 && lateMs < 1500, `closed ${lateMs} ms after exp`);
    });

    it("closes with 4403 TOKEN_EXPIRED for a renewal with an expired token of the same session", async () => {
      const user = await registerUser(t, "stale-renewal");
      const exp = claimsOf(user.accessToken).exp * 1000;
      const ws = connect(t.url, { token: user.accessToken });
      await ws.connected;
      await sleep(Math.max(0, exp - Date.now() - 700));
      const renewed = await refresh(t, user.refreshToken);
      assert.deepEqual(await ws.ping(bearer(renewed.accessToken)), pongFor(renewed.accessToken));
      await sleep(Math.max(0, exp - Date.now() + 300));
      // The first token has expired; the socket lives on the renewed one, until it is offered the first.
      ws.ping(bearer(user.accessToken)).catch(() => undefined);
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "TOKEN_EXPIRED"]);
    });

    it("refuses an expired token at connect with 4403 TOKEN_EXPIRED", async () => {
      const user = await registerUser(t, "late-connect");
      await sleep(Math.max(0, claimsOf(user.accessToken).exp * 1000 - Date.now() + 200));
      const closed = await connect(t.url, { token: user.accessToken }).closed;
      assert.deepEqual([closed.code, closed.reason], [4403, "TOKEN_EXPIRED"]);
    });
  });

  describe(`renewing a socket's token (${kind})`, () => {
    const t = useTestApp(kind);

    it("answers a renewal with a pong that holds the new expiry and no token", async () => {
      const user = await registerUser(t, "pong-reader");
      const raw = await rawSocket(t);
      raw.send({ type: "connection_init", payload: bearer(user.accessToken) });
      assert.equal(await raw.next(), `{"type":"connection_ack"}`);
      const renewed = await refresh(t, user.refreshToken);
      raw.send({ type: "ping", payload: bearer(renewed.accessToken) });
      const pong = await raw.next();
      assert.equal(pong, JSON.stringify({ type: "pong", payload: pongFor(renewed.accessToken) }));
      assert.ok(!pong.includes(renewed.accessToken) && !pong.includes("authorization"));
      raw.socket.close();
    });

    it("answers a ping without authorization as before: pong, its payload echoed", async () => {
      const user = await registerUser(t, "keep-alive");
      const raw = await rawSocket(t);
      raw.send({ type: "connection_init", payload: bearer(user.accessToken) });
      await raw.next();
      raw.send({ type: "ping" });
      assert.equal(await raw.next(), `{"type":"pong"}`);
      raw.send({ type: "ping", payload: { sentAt: 42 } });
      assert.equal(await raw.next(), `{"type":"pong","payload":{"sentAt":42}}`);
      raw.socket.close();
    });

    it("closes with 4403 TOKEN_INVALID for a renewal before connection_ack", async () => {
      const user = await registerUser(t, "too-early");
      const raw = await rawSocket(t);
      raw.send({ type: "ping", payload: bearer(user.accessToken) });
      assert.deepEqual(await raw.closed, { code: 4403, reason: "TOKEN_INVALID" });
      assert.equal(raw.socket.readyState, WebSocket.CLOSED);
    });

    it("renews an API-token connection with the same API token, and keeps its feed", async () => {
      const owner = await registerUser(t, "api-renewal");
      const apiToken = await createApiToken(t, owner.accessToken);
      const ws = connect(t.url, { token: apiToken });
      await ws.connected;
      const feed = new Feed(ws.client, { query: `subscription { postCreated { title } }` });
      await untilLive(feed, () => createPost(t, owner.accessToken, "before"));
      const pong = await ws.ping(bearer(apiToken));
      assert.deepEqual(Object.keys(pong ?? {}), ["expiresAt"]);
      assert.ok(Date.parse(pong!.expiresAt as string) > Date.now());
      await createPost(t, owner.accessToken, "after");
      await feed.until((f) => f.results.some((r) => r.data?.postCreated?.title === "after"));
      await ws.client.dispose();
    });

    // What the connection was opened with, and what a renewal offers, and the reason of the 4403.
    const refusals: Array<[string, (t: TestApp, name: string) => Promise<[string | null, unknown]>, string]> = [
      [
        "a token of another session of the same user",
        async (t, name) => {
          const user = await registerUser(t, name);
          return [user.accessToken, `Bearer ${(await login(t, name)).accessToken}`];
        },
        "TOKEN_INVALID",
      ],
      [
        "another user's token",
        async (t, name) => [
          (await registerUser(t, name)).accessToken,
          `Bearer ${(await registerUser(t, `${name}-other`)).accessToken}`,
        ],
        "TOKEN_INVALID",
      ],
      [
        "garbage",
        async (t, name) => [(await registerUser(t, name)).accessToken, "Bearer not-a-token"],
        "TOKEN_INVALID",
      ],
      [
        "a value that is not a string",
        async (t, name) => [(await registerUser(t, name)).accessToken, 42],
        "TOKEN_INVALID",
      ],
      [
        "a tampered token of the same session",
        async (t, name) => {
          const user = await registerUser(t, name);
          return [user.accessToken, `Bearer ${tamperedSignature(user.accessToken)}`];
        },
        "TOKEN_INVALID",
      ],
      [
        "a token of an ended session of the same user",
        async (t, name) => {
          const user = await registerUser(t, name);
          const ended = await login(t, name);
          assert.deepEqual((await t.gql(`mutation { logout }`, { token: ended.accessToken })).body, {
            data: { logout: true },
          });
          return [user.accessToken, `Bearer ${ended.accessToken}`];
        },
        "SESSION_ENDED",
      ],
      [
        "a token on an anonymous connection",
        async (t, name) => [null, `Bearer ${(await registerUser(t, name)).accessToken}`],
        "TOKEN_INVALID",
      ],
      [
        "its owner's session token on an API-token connection",
        async (t, name) => {
          const owner = await registerUser(t, name);
          return [await createApiToken(t, owner.accessToken), `Bearer ${owner.accessToken}`];
        },
        "TOKEN_INVALID",
      ],
      [
        "another API token of the same owner",
        async (t, name) => {
          const owner = await registerUser(t, name);
          return [await createApiToken(t, owner.accessToken), `Bearer ${await createApiToken(t, owner.accessToken)}`];
        },
        "TOKEN_INVALID",
      ],
    ];
    refusals.forEach(([name, setUp, reason], index) => {
      it(`closes with 4403 ${reason} for a renewal with ${name}`, async () => {
        const [opened, offered] = await setUp(t, `refused-${index}`);
        const ws = connect(t.url, opened === null ? {} : { token: opened });
        await ws.connected;
        const malformedBefore = await metric(t, `gta_token_rejections_total{reason="MALFORMED"}`);
        ws.ping({ authorization: offered }).catch(() => undefined);
        const closed = await ws.closed;
        assert.deepEqual([closed.code, closed.reason], [4403, reason]);
        // A refused token is counted as at connect and over HTTP.
        if (offered === "Bearer not-a-token" || offered === 42)
          assert.equal(await metric(t, `gta_token_rejections_total{reason="MALFORMED"}`), malformedBefore + 1);
      });
    });

    it(`closes a connection past ${WS_MAX_RENEWALS_PER_MINUTE} renewals a minute with 4429, counted once`, async () => {
      const user = await registerUser(t, "flooder");
      const ws = connect(t.url, { token: user.accessToken });
      await ws.connected;
      const sample = `gta_limit_refusals_total{limit="WS_MAX_RENEWALS_PER_MINUTE"}`;
      const before = await metric(t, sample);
      for (let i = 0; i < WS_MAX_RENEWALS_PER_MINUTE; i++)
        assert.deepEqual(await ws.ping(bearer(user.accessToken)), pongFor(user.accessToken));
      // A flood: the first past the budget closes the socket; the rest are not even looked at.
      const flood = Array.from({ length: 100 }, () => ws.ping(bearer(user.accessToken)));
      const answered = (await Promise.allSettled(flood)).filter((r) => r.status === "fulfilled").length;
      const closed = await ws.closed;
      assert.deepEqual([closed.code, closed.reason], [4429, "Too many renewals"]);
      assert.equal(answered, 0);
      assert.equal(await metric(t, sample), before + 1);
    });
  });
}
