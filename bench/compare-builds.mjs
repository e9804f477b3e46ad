// Builds side by side: what one change buys, measured one at a time. Starts each given server
// entry (a bundle or dist/src/main.js of some checkout, each with its own flags), then runs
// `{ me { id } }` and `{ __typename }` against all of them in interleaved rounds, rotating the
// order every round, and prints median requests/s, the range, the ratio to the first entry, the
// resident size a second after start and the largest after load. Every response is checked.
//
//   node bench/compare-builds.mjs label=path[,--node-flag…][,ENV=value…] …
//   e.g. node bench/compare-builds.mjs before=/tmp/old/dist/bundle/main.js after=dist/bundle/main.js
//
// Settings: COMPARE_ROUNDS [5], COMPARE_DURATION seconds [4], COMPARE_CONNECTIONS [64],
// COMPARE_QUERIES [me,typename], COMPARE_RATE [unset]. With COMPARE_RATE (requests/s, below every
// entry's capacity) the load is that steady rate instead of as fast as possible, and the table
// shows the server's CPU time per request (utime + stime from /proc over the run, divided by the
// requests answered): far less sensitive than requests/s to what else the machine runs, since
// neither the load generator nor other processes are counted. Each entry gets SQLite in a temporary directory and the same
// production environment as `npm run bench`; the entry's own dist/src/config.js is not consulted.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import autocannon from "autocannon";

import {
  cpuTicks,
  freePort,
  residentMegabytes,
  serverEnv,
  startProcess,
  stopProcess,
  waitForGraphql,
  waitUntilQuiet,
} from "./lib/processes.mjs";

const specs = process.argv.slice(2);
if (specs.length === 0 || specs.some((s) => !s.includes("="))) {
  console.error("usage: node bench/compare-builds.mjs label=path[,--node-flag…][,ENV=value…] …");
  process.exit(2);
}
const rounds = Number(process.env.COMPARE_ROUNDS ?? 5);
const duration = Number(process.env.COMPARE_DURATION ?? 4);
const connections = Number(process.env.COMPARE_CONNECTIONS ?? 64);
const queries = (process.env.COMPARE_QUERIES ?? "me,typename").split(",");
const rate = process.env.COMPARE_RATE ? Number(process.env.COMPARE_RATE) : undefined;
const TICK_MS = 10; // USER_HZ on Linux
const QUERIES = {
  me: { query: "{ me { id } }", token: true, expect: '{"data":{"me":{"id":"' },
  typename: { query: "{ __typename }", token: false, expect: '{"data":{"__typename":"Query"}}' },
  "typename-token": { query: "{ __typename }", token: true, expect: '{"data":{"__typename":"Query"}}' },
};
for (const q of queries) {
  if (!QUERIES[q]) {
    console.error(`unknown query ${q}: use ${Object.keys(QUERIES).join(", ")}`);
    process.exit(2);
  }
}

const secret = randomBytes(48).toString("base64url");
const entries = [];
const dirs = [];
process.on("exit", () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

for (const spec of specs) {
  const [label, rest] = [spec.slice(0, spec.indexOf("=")), spec.slice(spec.indexOf("=") + 1)];
  const [path, ...options] = rest.split(",");
  const flags = options.filter((o) => o.startsWith("--"));
  const extra = Object.fromEntries(options.filter((o) => !o.startsWith("--")).map((o) => o.split("=", 2)));
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "gta-compare-"));
  dirs.push(dataDir);
  const url = `http://127.0.0.1:${port}/graphql`;
  const handle = startProcess(process.execPath, [...flags, resolve(path)], {
    env: { ...(await serverEnv({ port, dataDir, secret })), ...extra },
    cwd: dataDir,
  });
  await waitForGraphql(handle, url, performance.now());
  const register = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
      variables: { i: { username: "compare-user", password: "compare password 1234" } },
    }),
  }).then((r) => r.json());
  const token = register.data.register.accessToken;
  await sleep(1000);
  const rssAtStart = residentMegabytes(handle.process.pid) ?? 0;
  entries.push({ label, path, flags, extra, handle, url, token, samples: {}, rss: 0, rssAtStart });
  console.error(`started ${label}: ${path} ${[...flags, ...options.filter((o) => !o.startsWith("--"))].join(" ")}`);
}

function load(entry, name, seconds) {
  const q = QUERIES[name];
  return new Promise((done, fail) => {
    autocannon(
      {
        url: entry.url,
        method: "POST",
        headers: { "content-type": "application/json", ...(q.token ? { authorization: `Bearer ${entry.token}` } : {}) },
        body: JSON.stringify({ query: q.query }),
        connections,
        duration: seconds,
        ...(rate ? { overallRate: rate } : {}),
        verifyBody: (body) => body.startsWith(q.expect) && !body.includes('"errors"'),
      },
      (error, result) => (error ? fail(error) : done(result)),
    );
  });
}

// The tokens live 15 minutes; a fresh one per round keeps long runs valid.
async function refreshTokens() {
  for (const entry of entries) {
    const login = await fetch(entry.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        variables: { i: { username: "compare-user", password: "compare password 1234" } },
      }),
    }).then((r) => r.json());
    entry.token = login.data.login.accessToken;
  }
}

for (const entry of entries) for (const name of queries) await load(entry, name, 1); // warm-up
let failed = 0;
for (let round = 0; round < rounds; round++) {
  await refreshTokens();
  for (const name of queries) {
    const order = entries.map((_, i) => entries[(i + round) % entries.length]);
    for (const entry of order) {
      await waitUntilQuiet(entry.handle.process.pid);
      const ticksBefore = cpuTicks(entry.handle.process.pid);
      const result = await load(entry, name, duration);
      const ticks = cpuTicks(entry.handle.process.pid) - ticksBefore;
      const bad = result.errors + Math.max(result.non2xx, result.mismatches);
      failed += bad;
      (entry.samples[name] ??= []).push(
        rate ? (ticks * TICK_MS * 1000) / result.requests.total : result.requests.total / result.duration,
      );
      entry.rss = Math.max(entry.rss, residentMegabytes(entry.handle.process.pid) ?? 0);
      console.error(
        `round ${round + 1} ${name.padEnd(14)} ${entry.label.padEnd(16)} ${(result.requests.total / result.duration).toFixed(0)} req/s, ${rate ? `${entry.samples[name].at(-1).toFixed(1)} µs CPU per request, ` : ""}${bad} failed`,
      );
    }
  }
}
await Promise.all(entries.map((e) => stopProcess(e.handle)));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const base = entries[0];
console.log(
  `${rounds} interleaved rounds × ${duration} s, ${connections} connections; load average at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}; ${failed} failed requests`,
);
const unit = rate ? `µs CPU/request at ${rate}/s` : "req/s";
console.log(
  [
    "build".padEnd(18),
    ...queries.map((q) => `${q} ${unit} (range) ×first`.padEnd(40)),
    "RSS MB after start, largest after load",
  ].join(""),
);
for (const entry of entries) {
  const cells = queries.map((q) => {
    const m = median(entry.samples[q]);
    const digits = rate ? 1 : 0;
    const range = `${Math.min(...entry.samples[q]).toFixed(digits)}-${Math.max(...entry.samples[q]).toFixed(digits)}`;
    return `${m.toFixed(rate ? 1 : 0)} (${range}) ×${(m / median(base.samples[q])).toFixed(2)}`.padEnd(40);
  });
  console.log([entry.label.padEnd(18), ...cells, `${entry.rssAtStart.toFixed(1)}, ${entry.rss.toFixed(0)}`].join(""));
}
