// `node bench/idle-memory.mjs [--rounds 2] [--postgres <url>]`: the server's resident size at rest,
// with npm start's memory flags and with Node's defaults, side by side (issue 28, item 7).
//
// Each round starts the built server twice, alternately as `npm start` runs it (scripts/
// memory-defaults.mjs's flags and MALLOC_ARENA_MAX) and with none of them, each on a fresh
// database (bench/lib/abuse-harness.mjs's startServer: production, LOG_LEVEL=info to a file). It
// reads VmRSS once the first request has been answered and the process is quiet ("after start"),
// then warms the server up with every kind of work it does (20 logins, 4,000 `{ me { id } }` 8 at a
// time, 200 createPost, 200 `posts(first: 20)` with authors, 10 WebSocket subscribers of
// postCreated that receive those posts), waits until it is quiet again and reads VmRSS ("after
// warm-up", the idle size of a server that has worked) and VmHWM (the peak of the warm-up).
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

import {
  gql,
  loadCheckout,
  PASSWORD,
  register,
  startServer,
  stopServer,
  withoutArenaMax,
} from "./lib/abuse-harness.mjs";
import { waitUntilQuiet } from "./lib/processes.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(option("--rounds", 2));
const postgres = option("--postgres", undefined);

const loaded = await loadCheckout(root, root);
const MODES = {
  "npm start's flags": loaded,
  "Node's defaults": { ...loaded, startEnv: withoutArenaMax },
};

function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const mb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? 0) / 1024;
  return { rss: mb("VmRSS"), hwm: mb("VmHWM") };
}

async function subscribers(server, token, count) {
  const sockets = [];
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(server.wsUrl, "graphql-transport-ws");
    await new Promise((resolve, reject) => {
      ws.on("open", () =>
        ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } })),
      );
      ws.on("message", (data) => {
        if (data.toString().includes("connection_ack")) resolve();
      });
      ws.on("error", reject);
      ws.on("close", (code) => reject(new Error(`subscriber closed with ${code}`)));
    });
    ws.send(
      JSON.stringify({ id: "1", type: "subscribe", payload: { query: "subscription { postCreated { id title } }" } }),
    );
    sockets.push(ws);
  }
  return sockets;
}

async function warmUp(server) {
  await register(server, "warm");
  // Each login a session (at most SESSIONS_MAX_PER_USER live, the oldest ended): the last one's token is used.
  let token;
  for (let i = 0; i < 20; i++) {
    const r = await gql(server, "mutation($i: LoginInput!) { login(input: $i) { accessToken } }", {
      i: { username: "warm", password: PASSWORD },
    });
    if (!r.json?.data) throw new Error(`login: ${r.text.slice(0, 200)}`);
    token = r.json.data.login.accessToken;
  }
  const sockets = await subscribers(server, token, 10);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 500; i++) await gql(server, "{ me { id } }", undefined, token);
    }),
  );
  for (let i = 0; i < 200; i++) {
    await gql(
      server,
      "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
      {
        i: { title: `warm ${i}`, body: "x".repeat(2000) },
      },
      token,
    );
    await gql(server, "{ posts(first: 20) { edges { node { id title author { username } } } } }");
  }
  await sleep(1000);
  for (const ws of sockets) ws.close();
}

async function measure(name, checkout) {
  const server = await startServer({
    main: join(root, "dist/bundle/main.js"),
    postgresUrl: postgres,
    env: { CREATE_POST_MAX_PER_USER: "0", WRITES_MAX_PER_USER: "0", LOGIN_MAX_PER_USER: "0" },
    checkout,
  });
  try {
    await waitUntilQuiet(server.pid);
    await sleep(1000);
    const atStart = memory(server.pid).rss;
    await warmUp(server);
    await waitUntilQuiet(server.pid);
    await sleep(5000);
    const after = memory(server.pid);
    return { mode: name, atStartMb: atStart, afterWarmUpMb: after.rss, warmUpPeakMb: after.hwm };
  } finally {
    await stopServer(server);
  }
}

const results = [];
process.stderr.write(
  `idle memory: ${rounds} rounds, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}\n`,
);
for (let round = 0; round < rounds; round++) {
  for (const [name, checkout] of Object.entries(MODES)) {
    const result = await measure(name, checkout);
    process.stderr.write(`  ${JSON.stringify(result)}\n`);
    results.push(result);
  }
}
const list = (mode, key) =>
  results
    .filter((r) => r.mode === mode)
    .map((r) => r[key].toFixed(0))
    .join(", ");
console.log("| server | RSS after start MB | RSS after warm-up, idle MB | VmHWM during warm-up MB |");
console.log("| --- | --- | --- | --- |");
for (const mode of Object.keys(MODES))
  console.log(
    `| ${mode} | ${list(mode, "atStartMb")} | ${list(mode, "afterWarmUpMb")} | ${list(mode, "warmUpPeakMb")} |`,
  );
process.stderr.write(
  `load average at the end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}\n`,
);
process.exit(0);
