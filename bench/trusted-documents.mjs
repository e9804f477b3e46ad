// `node bench/trusted-documents.mjs`: what a trusted document costs the server, against the same
// query sent as text. Issue 27 asks for the CPU per request of `{ me { id } }` sent by its hash to a
// server with a TRUSTED_DOCUMENTS manifest, beside the same text sent to a server without one.
//
// Two servers start as `npm start` runs them (the bundle, production, SQLite): one without a
// manifest and one with a manifest holding `{ me { id } }`. Each way of sending the query is run
// at the same fixed rate (an open-loop load, bench/lib/steady-load.mjs) in interleaved rounds, and
// the server's own CPU time (utime + stime from /proc/<pid>/stat) is divided by the requests it
// answered. CPU per request at a fixed rate is steadier on a shared 2-core machine than requests
// per second. It is a measurement: it exits 0 whatever the numbers, non-zero only when a server
// could not start or answered wrongly.
//
//   node bench/trusted-documents.mjs [--rate 800] [--seconds 8] [--rounds 3]
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { loadCheckout, register, startServer, stopServer } from "./lib/abuse-harness.mjs";
import { steadyLoad } from "./lib/steady-load.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "800" },
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);

const ME = "{ me { id } }";
// The harness's readiness probe and registration, listed so that the server with a manifest starts and seeds.
const TYPENAME = "{ __typename }";
const REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

const CLOCK_TICKS_PER_SECOND = 100;
/** The process's CPU time so far, in seconds (user + system, from /proc). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // After "pid (comm) ", utime and stime are the 12th and 13th fields.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

const dir = mkdtempSync(join(tmpdir(), "gta-trusted-bench-"));
const manifest = join(dir, "persisted-documents.json");
writeFileSync(manifest, JSON.stringify(Object.fromEntries([ME, TYPENAME, REGISTER].map((d) => [sha256(d), d]))));

const checkout = await loadCheckout(root, root);
const main = join(root, "dist/bundle/main.js");
const plain = await startServer({ main, checkout });
const trusted = await startServer({ main, checkout, env: { TRUSTED_DOCUMENTS: manifest } });

const ways = [];
try {
  const plainUser = await register(plain, "bench-plain");
  const trustedUser = await register(trusted, "bench-trusted");
  const hash = sha256(ME);
  ways.push(
    { name: "text, no manifest", server: plain, token: plainUser.token, body: { query: ME } },
    { name: "text, listed", server: trusted, token: trustedUser.token, body: { query: ME } },
    { name: "documentId", server: trusted, token: trustedUser.token, body: { documentId: `sha256:${hash}` } },
    {
      name: "persistedQuery hash",
      server: trusted,
      token: trustedUser.token,
      body: { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
    },
  );
  for (const way of ways) {
    way.samples = [];
    way.payload = JSON.stringify(way.body);
    const check = await fetch(way.server.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${way.token}` },
      body: way.payload,
    });
    const text = await check.text();
    if (check.status !== 200 || !text.includes('"me":{"id"')) throw new Error(`${way.name}: ${check.status} ${text}`);
  }
  const run = async (way, durationSeconds) => {
    const before = cpuSeconds(way.server.pid);
    const result = await steadyLoad({
      url: way.server.url,
      body: way.payload,
      headers: { "content-type": "application/json", authorization: `Bearer ${way.token}` },
      rate,
      durationSeconds,
      verifyBody: (text) => text.includes('"me":{"id"'),
    });
    const cpu = cpuSeconds(way.server.pid) - before;
    if (result.errors > 0) throw new Error(`${way.name}: ${result.errors} requests failed`);
    return { microseconds: (cpu / result.requests) * 1e6, p50: result.p50, p99: result.p99 };
  };
  for (const way of ways) await run(way, 2); // warm-up: JIT and caches
  for (let round = 0; round < rounds; round++) {
    for (const way of ways) {
      way.samples.push(await run(way, seconds));
      await sleep(200);
    }
  }
} finally {
  await stopServer(plain);
  await stopServer(trusted);
  rmSync(dir, { recursive: true, force: true });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(
  `${rounds} rounds × ${seconds} s at ${rate} requests/s of { me { id } }, signed in; CPU per request of the server process`,
);
const baseline = median(ways[0].samples.map((s) => s.microseconds));
for (const way of ways) {
  const cpu = median(way.samples.map((s) => s.microseconds));
  const p50 = median(way.samples.map((s) => s.p50));
  const p99 = median(way.samples.map((s) => s.p99));
  console.log(
    `${way.name.padEnd(22)} ${cpu.toFixed(0).padStart(5)} µs CPU/request (${(cpu / baseline).toFixed(2)} × text)  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  rounds: ${way.samples.map((s) => s.microseconds.toFixed(0)).join(", ")}`,
  );
}
