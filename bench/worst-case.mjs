// The worst case the default budgets of docs/limits.md allow at once, against the built server with
// `--max-old-space-size=<heapMb>` (default 160, npm start's): 1,000 WebSocket connections from 20
// forwarded addresses holding 2,000 subscriptions of a selection near SUBSCRIPTION_MAX_COST, then
// ten updates delivered to all of them while four waves of 48 HTTP operations each build 8 MB of
// text (five pages of 100 posts of 20,000 "€") up to QUERY_MAX_COST_IN_FLIGHT. Prints the live heap
// after forced collections, events delivered, the peak resident size and a bystander's latency.
// Used to choose npm start's old-space size (scripts/memory-defaults.mjs):
//   node bench/worst-case.mjs dist/bundle/main.js 96     # thrashes
//   node bench/worst-case.mjs dist/bundle/main.js 160    # as with 1 GB
//   node bench/worst-case.mjs dist/bundle/main.js node   # Node's defaults: no memory flag, MALLOC_ARENA_MAX unset
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import WebSocket from "ws";

import { freePort } from "./lib/processes.mjs";
const [bundle = "dist/bundle/main.js", heapMb = "160"] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "wsw-"));
const port = await freePort();
const url = `http://127.0.0.1:${port}/graphql`;
const out = join(dir, "gc.json");
const child = spawn(process.execPath, [bundle], {
  env: {
    PATH: process.env.PATH,
    PORT: String(port),
    HOST: "127.0.0.1",
    DATA_DIR: dir,
    METRICS_PORT: "0",
    LOG_LEVEL: "warn",
    ...(heapMb === "node" ? {} : { MALLOC_ARENA_MAX: "2" }),
    GC_OUT: out,
    TRUST_PROXY: "loopback",
    WS_MAX_ANONYMOUS_CONNECTIONS: "1000",
    WS_MAX_ANONYMOUS_SUBSCRIPTIONS: "2000",
    CREATE_POST_MAX_PER_USER: "0",
    UPDATE_POST_MAX_PER_USER: "0",
    NODE_OPTIONS:
      (heapMb === "node" ? "" : "--max-old-space-size=" + heapMb + " --max-semi-space-size=4 ") +
      "--expose-gc --require " +
      fileURLToPath(new URL("./lib/heap-probe.cjs", import.meta.url)) +
      "",
  },
  stdio: ["ignore", "ignore", "pipe"],
});
let stderr = "";
child.stderr.on("data", (c) => (stderr += c));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 100; i++) {
  try {
    await fetch(url.replace("/graphql", "/healthz"));
    break;
  } catch {
    await sleep(100);
  }
}
const alive = () => child.exitCode === null && child.signalCode === null;
const rss = () => {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))[1]) / 1024;
  } catch {
    return 0;
  }
};
async function heap() {
  if (existsSync(out)) unlinkSync(out);
  child.kill("SIGUSR2");
  for (let i = 0; i < 600 && !existsSync(out); i++) await sleep(50);
  await sleep(50);
  return (JSON.parse(readFileSync(out, "utf8")).heapUsed / 2 ** 20).toFixed(1);
}
const gql = async (query, variables, token) =>
  (
    await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    })
  ).json();
let running = true,
  peak = 0,
  failed = 0;
const lat = [];
const base = await heap();
const reg = await gql(
  `mutation { register(input: { username: "attacker", password: "correct horse battery" }) { accessToken } }`,
);
const token = reg.data.register.accessToken;
const ids = [];
for (let i = 0; i < 4; i++)
  ids.push(
    (
      await gql(
        `mutation($i: CreatePostInput!) { createPost(input: $i) { id } }`,
        { i: { title: `p${i}`, body: "x".repeat(5000) } },
        token,
      )
    ).data.createPost.id,
  );
for (let i = 0; i < 100; i++)
  await gql(
    `mutation($i: CreatePostInput!) { createPost(input: $i) { id } }`,
    { i: { title: `fat${i}`, body: "€".repeat(20000) } },
    token,
  );
const PAGES = `{ ${Array.from({ length: 5 }, (_, i) => `p${i}: posts(first: 100) { body }`).join(" ")} }`;
const httpTally = {};
const sockets = [];
let events = 0,
  closed = {};
for (let i = 0; i < 1000; i++) {
  const ws = await new Promise((resolve) => {
    const ws = new WebSocket(url.replace("http", "ws"), "graphql-transport-ws", {
      headers: { "x-forwarded-for": `10.0.${i % 20}.1` },
    });
    ws.on("unexpected-response", (req) => {
      req.destroy();
      resolve(null);
    });
    ws.on("error", () => resolve(null));
    ws.on("close", (c) => {
      closed[c] = (closed[c] ?? 0) + 1;
      resolve(null);
    });
    ws.on("message", (d) => {
      const s = d.toString();
      if (s.includes("connection_ack")) resolve(ws);
      else if (s.includes('"next"')) events++;
    });
    ws.on("open", () => ws.send('{"type":"connection_init"}'));
  });
  if (ws) sockets.push(ws);
}
const afterSockets = await heap();
const light = `subscription($id: ID!) { postUpdated(id: $id) { id title body author { username posts(first: 3) { title body } } } }`;
for (const ws of sockets)
  for (let j = 0; j < 2; j++)
    ws.send(JSON.stringify({ id: `l${j}`, type: "subscribe", payload: { query: light, variables: { id: ids[0] } } }));
await sleep(2000);
const afterSubs = await heap();
const bystander = (async () => {
  while (running) {
    const t = performance.now();
    try {
      const r = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"query":"{ __typename }"}',
        signal: AbortSignal.timeout(10000),
      });
      await r.json();
      if (r.status === 200) lat.push(performance.now() - t);
      else failed++;
    } catch {
      failed++;
      await sleep(50);
    }
    peak = Math.max(peak, rss());
    await sleep(5);
  }
})();
const t0 = performance.now();
let midHeap = [];
const http = (async () => {
  for (let w = 0; w < 4 && alive(); w++) {
    const wave = Promise.all(
      Array.from({ length: 48 }, () =>
        fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "x-forwarded-for": `10.1.${w}.1` },
          body: JSON.stringify({ query: PAGES }),
          signal: AbortSignal.timeout(30000),
        }).then(
          async (r) => {
            const t = await r.text();
            const k = r.status + " " + (/"code":"(\w+)"/.exec(t)?.[1] ?? "");
            httpTally[k] = (httpTally[k] ?? 0) + 1;
          },
          (e) => {
            httpTally[e.name] = (httpTally[e.name] ?? 0) + 1;
          },
        ),
      ),
    );
    await sleep(300);
    if (alive()) midHeap.push(await heap());
    await wave;
  }
})();
for (let k = 0; k < 10 && alive(); k++)
  await gql(
    `mutation($id: ID!, $t: String!) { updatePost(id: $id, input: { title: $t }) { id } }`,
    { id: ids[0], t: `u${k}` },
    token,
  );
while (alive() && events < 2000 * 10 * 0.9 && performance.now() - t0 < 60000) await sleep(200);
await http;
await sleep(1000);
running = false;
await bystander;
lat.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    heapMb,
    httpTally,
    liveHeapDuringHttpMb: midHeap,
    alive: alive(),
    sockets: sockets.length,
    closed,
    baseHeapMb: base,
    heapAfter1000SocketsMb: afterSockets,
    heapAfter2000SubsMb: afterSubs,
    events,
    deliverSeconds: ((performance.now() - t0) / 1000).toFixed(1),
    peakRssMb: peak.toFixed(0),
    bystander: {
      ok: lat.length,
      failed,
      p50: lat[Math.floor(lat.length / 2)]?.toFixed(1),
      p99: lat[Math.floor(lat.length * 0.99)]?.toFixed(1),
    },
    crash: alive() ? undefined : stderr.slice(-300),
  }),
);
for (const ws of sockets) ws.terminate();
child.kill("SIGKILL");
process.exit(0);
