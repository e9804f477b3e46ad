// Measurement: memory per idle WebSocket subscription connection, and the time from logout to the
// socket's close, against the built server (`node dist/bundle/main.js`, production, SQLite).
//
// Opens CONNECTIONS graphql-ws connections (default 1,000), each signed in with its own session,
// then starts one postCreated subscription on each, waiting for the server to settle after each
// step, and reports the growth of the server's resident set size divided by the number of
// connections (an upper bound: RSS also holds garbage not yet collected). Then logs out SAMPLES
// sessions (default 50) one at a time and reports how long each socket took to close with 4403 after
// the logout was sent. Run after a build: node bench/ws-idle.mjs [connections] [samples]
// (BENCH_QUERY replaces the subscription document, e.g. 'subscription { postUpdated(id: "x") { id } }').
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { createClient } from "graphql-ws";
import WebSocket from "ws";

import {
  freePort,
  graphqlCaller,
  residentMegabytes,
  serverEnv,
  startProcess,
  stopProcess,
  waitForGraphql,
  waitUntilQuiet,
} from "./lib/processes.mjs";

const CONNECTIONS = Number(process.argv[2] ?? 1000);
const SAMPLES = Math.min(Number(process.argv[3] ?? 50), CONNECTIONS);
const root = fileURLToPath(new URL("..", import.meta.url));

const dataDir = mkdtempSync(join(tmpdir(), "ws-idle-"));
const port = await freePort();
const url = `http://127.0.0.1:${port}/graphql`;
const server = startProcess(process.execPath, ["dist/bundle/main.js"], {
  cwd: root,
  env: await serverEnv({
    port,
    dataDir,
    secret: randomBytes(48).toString("base64url"),
    // Every connection comes from 127.0.0.1: lift the per-IP and total caps to the bench's count.
    extra: {
      REGISTER_MAX_PER_IP: "0",
      WS_MAX_CONNECTIONS: String(Math.max(1000, CONNECTIONS)),
      WS_MAX_CONNECTIONS_PER_IP: String(Math.max(1000, CONNECTIONS)),
      WS_MAX_SUBSCRIPTIONS: String(Math.max(2000, CONNECTIONS)),
      WS_MAX_SUBSCRIPTIONS_PER_IP: String(Math.max(2000, CONNECTIONS)),
    },
  }),
});

const gql = graphqlCaller(url);

function subscribe(connection) {
  connection.client.subscribe(
    { query: process.env.BENCH_QUERY ?? "subscription { postCreated { id } }" },
    { next() {}, error() {}, complete() {} },
  );
}

/** One signed-in connection; resolves once acknowledged. */
function open(token) {
  return new Promise((resolve, reject) => {
    const connection = { closed: undefined };
    connection.closedPromise = new Promise((done) => (connection.onClosed = done));
    const client = createClient({
      url: url.replace("http", "ws"),
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      shouldRetry: () => false,
      connectionParams: { authorization: `Bearer ${token}` },
      onNonLazyError: reject,
      on: {
        connected: () => resolve(connection),
        closed: (event) => connection.onClosed({ code: event.code, at: performance.now() }),
      },
    });
    connection.client = client;
  });
}

try {
  await waitForGraphql(server, url, performance.now());
  const password = "correct horse battery";
  await gql(`mutation($i: RegisterInput!) { register(input: $i) { accessToken } }`, {
    i: { username: "idle", password },
  });
  // One session per connection: logins in parallel batches (argon2id dominates).
  const tokens = [];
  while (tokens.length < CONNECTIONS) {
    const batch = Math.min(16, CONNECTIONS - tokens.length);
    const logins = await Promise.all(
      Array.from({ length: batch }, () =>
        gql(`mutation($i: LoginInput!) { login(input: $i) { accessToken } }`, { i: { username: "idle", password } }),
      ),
    );
    tokens.push(...logins.map((d) => d.login.accessToken));
  }
  // Warm-up: the WebSocket and subscription code paths are loaded and compiled before measuring.
  const warm = await Promise.all(tokens.slice(0, 20).map(open));
  for (const c of warm) subscribe(c);
  await sleep(200);
  for (const c of warm) await c.client.dispose();
  await sleep(500);
  await waitUntilQuiet(server.process.pid);
  const before = residentMegabytes(server.process.pid);

  const connections = [];
  for (let i = 0; i < CONNECTIONS; i += 50) connections.push(...(await Promise.all(tokens.slice(i, i + 50).map(open))));
  await sleep(1000);
  await waitUntilQuiet(server.process.pid);
  const connected = residentMegabytes(server.process.pid);
  for (const c of connections) subscribe(c);
  await sleep(1000);
  await waitUntilQuiet(server.process.pid);
  const after = residentMegabytes(server.process.pid);
  const kb = (from, to) => (((to - from) * 1024) / CONNECTIONS).toFixed(1);
  console.log(
    `${CONNECTIONS} idle connections, each signed in with its own session: RSS ${before.toFixed(1)} MB -> ${connected.toFixed(1)} MB connected (${kb(before, connected)} KB per connection) -> ${after.toFixed(1)} MB with one subscription each (${kb(before, after)} KB per connection in all, ${kb(connected, after)} KB for the subscription)`,
  );

  const times = [];
  for (let i = 0; i < SAMPLES; i++) {
    const sentAt = performance.now();
    await gql(`mutation { logout }`, undefined, tokens[i]);
    const closed = await connections[i].closedPromise;
    if (closed.code !== 4403) throw new Error(`closed with ${closed.code}, not 4403`);
    times.push(closed.at - sentAt);
  }
  times.sort((a, b) => a - b);
  const pick = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
  console.log(
    `logout -> 4403 close (${SAMPLES} sessions, ${CONNECTIONS} connections open): median ${pick(0.5)} ms, p95 ${pick(0.95)} ms, max ${times.at(-1).toFixed(1)} ms after sending logout`,
  );
  await Promise.all(connections.map((c) => c.client.dispose()));
} finally {
  await stopProcess(server);
  rmSync(dataDir, { recursive: true, force: true });
}
