// `node bench/compiled-lane.mjs`: what the compiled lane (GRAPHQL_COMPILED_LANE) saves on a known
// query. Two servers start as `npm start` runs them (the bundle, production, SQLite), one with the
// lane off and one with it on (the default), and a signed-in `{ me { id } }` is sent to each at the
// same fixed rate (an open-loop load, bench/lib/steady-load.mjs) in interleaved rounds; the server's
// own CPU time (utime + stime from /proc/<pid>/stat) is divided by the requests it answered, which
// is steadier on a shared 2-core machine than requests per second. It is a measurement: it exits 0
// whatever the numbers, non-zero only when a server could not start or answered wrongly.
//
//   node bench/compiled-lane.mjs [--rate 800] [--seconds 8] [--rounds 3]
import { readFileSync } from "node:fs";
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

const CLOCK_TICKS_PER_SECOND = 100;
/** The process's CPU time so far, in seconds (user + system, from /proc). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // After "pid (comm) ", utime and stime are the 12th and 13th fields.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

const checkout = await loadCheckout(root, root);
const main = join(root, "dist/bundle/main.js");
const off = await startServer({ main, checkout, env: { GRAPHQL_COMPILED_LANE: "false" } });
const on = await startServer({ main, checkout });

const ways = [];
try {
  const offUser = await register(off, "bench-off");
  const onUser = await register(on, "bench-on");
  ways.push(
    { name: "lane off (Apollo)", server: off, token: offUser.token, body: { query: ME } },
    { name: "lane on", server: on, token: onUser.token, body: { query: ME } },
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
  await stopServer(off);
  await stopServer(on);
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
    `${way.name.padEnd(18)} ${cpu.toFixed(0).padStart(5)} µs CPU/request (${(cpu / baseline).toFixed(2)} × lane off)  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  rounds: ${way.samples.map((s) => s.microseconds.toFixed(0)).join(", ")}`,
  );
}
