// Measurement: what a live feed loses when access tokens expire (issue 24), against the built server
// (`node dist/bundle/main.js`, production, SQLite) with 5-second access tokens.
//
// A writer creates a post every INTERVAL ms (default 250) through an API token for DURATION seconds
// (default 60, twelve token lifetimes); a reader follows `postCreated` over graphql-ws in one of
// two ways, given as the first argument:
//
//   naive   what the docs of round 2 led to: connectionParams read the current access token (refreshed
//           over HTTP when it expires), graphql-ws's default retry; nothing renews an open socket and
//           nothing replays what a reconnect missed.
//   renew   the round-3 way: a second before each expiry the reader refreshes and sends the new token
//           in a ping's payload, so the socket stays open; after any reconnect it resumes with
//           postCreated(after: <the last post it saw>).
//   resume  no renewal (the socket still closes at each expiry and graphql-ws reconnects), but each
//           reconnect resumes with postCreated(after: <the last post it saw>): gaps, and no loss.
//
// Reports the posts created, received, missed and duplicated, the number of reconnects, and each
// gap (close to the next acknowledged connection) in ms. Run after a build:
//   node bench/live-feed.mjs naive|renew|resume [durationSeconds] [intervalMs]
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { createClient } from "graphql-ws";
import WebSocket from "ws";

import { freePort, graphqlCaller, serverEnv, startProcess, stopProcess, waitForGraphql } from "./lib/processes.mjs";

const MODE = process.argv[2] ?? "naive";
const DURATION_S = Number(process.argv[3] ?? 60);
const INTERVAL_MS = Number(process.argv[4] ?? 250);
if (!["naive", "renew", "resume"].includes(MODE)) throw new Error("mode: naive, renew or resume");
const root = fileURLToPath(new URL("..", import.meta.url));

const dataDir = mkdtempSync(join(tmpdir(), "live-feed-"));
const port = await freePort();
const url = `http://127.0.0.1:${port}/graphql`;
const server = startProcess(process.execPath, ["dist/bundle/main.js"], {
  cwd: root,
  env: await serverEnv({
    port,
    dataDir,
    secret: randomBytes(48).toString("base64url"),
    extra: { JWT_ACCESS_TOKEN_EXPIRES: "5s", CREATE_POST_MAX_PER_USER: "0", WRITES_MAX_PER_USER: "0" },
  }),
});

const gql = graphqlCaller(url);

const AUTH = `accessToken refreshToken`;
const password = "correct horse battery";

/** The reader's session: the current access token, refreshed over HTTP. */
function session(tokens) {
  const state = { ...tokens, expiresAt: Date.now() + 5000 };
  state.refresh = async () => {
    const data = await gql(`mutation($r: String) { refreshToken(refreshToken: $r) { ${AUTH} } }`, {
      r: state.refreshToken,
    });
    Object.assign(state, data.refreshToken, { expiresAt: Date.now() + 5000 });
  };
  state.current = async () => {
    if (Date.now() > state.expiresAt - 500) await state.refresh();
    return state.accessToken;
  };
  return state;
}

function follow(reader) {
  const seen = [];
  const gaps = [];
  let closedAt;
  let socket;
  let renewTimer;
  const variables = {};
  const renewSoon = () => {
    clearTimeout(renewTimer);
    renewTimer = setTimeout(
      async () => {
        await reader.refresh();
        if (socket?.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "ping", payload: { authorization: `Bearer ${reader.accessToken}` } }));
        }
        renewSoon();
      },
      Math.max(0, reader.expiresAt - Date.now() - 1000),
    );
  };
  const client = createClient({
    url: url.replace("http", "ws"),
    webSocketImpl: WebSocket,
    lazy: false,
    connectionParams: async () => ({ authorization: `Bearer ${await reader.current()}` }),
    on: {
      connected: (ws) => {
        socket = ws;
        if (closedAt !== undefined) gaps.push(performance.now() - closedAt);
        closedAt = undefined;
      },
      closed: () => {
        closedAt ??= performance.now();
      },
    },
  });
  if (MODE === "renew") renewSoon();
  // graphql-ws sends this payload again on every reconnect: `after` is kept current in place.
  const resumes = MODE !== "naive";
  const query = resumes
    ? "subscription($after: ID) { postCreated(after: $after) { id } }"
    : "subscription { postCreated { id } }";
  const stop = client.subscribe(
    { query, variables },
    {
      next: ({ data, errors }) => {
        if (errors) console.error("subscription error", JSON.stringify(errors));
        if (!data) return;
        seen.push(data.postCreated.id);
        if (resumes) variables.after = data.postCreated.id;
      },
      error: (error) => console.error("subscription ended:", error?.code ?? error),
      complete: () => {},
    },
  );
  return {
    seen,
    gaps,
    close: async () => {
      clearTimeout(renewTimer);
      stop();
      await client.dispose();
    },
  };
}

try {
  await waitForGraphql(server, url, performance.now());
  const writerAuth = await gql(`mutation($i: RegisterInput!) { register(input: $i) { ${AUTH} } }`, {
    i: { username: "writer", password },
  });
  const { createApiToken } = await gql(
    `mutation { createApiToken(input: { name: "writer", scopes: [POSTS_WRITE] }) { token } }`,
    undefined,
    writerAuth.register.accessToken,
  );
  const readerAuth = await gql(`mutation($i: RegisterInput!) { register(input: $i) { ${AUTH} } }`, {
    i: { username: "reader", password },
  });
  const reader = follow(session(readerAuth.register));
  await sleep(1000);

  const created = [];
  const until = performance.now() + DURATION_S * 1000;
  while (performance.now() < until) {
    const data = await gql(
      `mutation($i: CreatePostInput!) { createPost(input: $i) { id } }`,
      { i: { title: `post ${created.length}`, body: "live" } },
      createApiToken.token,
    );
    created.push(data.createPost.id);
    await sleep(INTERVAL_MS);
  }
  await sleep(2000);
  await reader.close();

  const seen = new Set(reader.seen);
  const missed = created.filter((id) => !seen.has(id)).length;
  const duplicates = reader.seen.length - seen.size;
  const gaps = reader.gaps.map((g) => Math.round(g));
  console.log(
    `${MODE}: ${DURATION_S} s with 5 s access tokens, a post every ${INTERVAL_MS} ms: created ${created.length}, ` +
      `received ${reader.seen.length}, missed ${missed} (${((100 * missed) / created.length).toFixed(1)}%), ` +
      `duplicates ${duplicates}, reconnects ${gaps.length}` +
      (gaps.length
        ? `, gaps ms min/median/max ${Math.min(...gaps)}/${gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)]}/${Math.max(...gaps)}`
        : ""),
  );
} finally {
  await stopProcess(server);
  rmSync(dataDir, { recursive: true, force: true });
}
