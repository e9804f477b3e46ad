// CPU per request at a fixed rate, for the benches that compare ways of sending one request to
// servers started by abuse-harness.mjs (compiled-lane.mjs, trusted-documents.mjs): each way is
// checked once, warmed up, then loaded in interleaved rounds, and the server's CPU time (every
// thread's, processes.mjs's cpuNanoseconds) divided by the requests it answered.
import { setTimeout as sleep } from "node:timers/promises";

import { cpuNanoseconds } from "./processes.mjs";
import { steadyLoad } from "./steady-load.mjs";

/**
 * Measures each of `ways` ({ name, server, token, body }): a check that it answers 200 with
 * `expect` in the body, a 2-second warm-up, then `rounds` runs of `seconds` at `rate` requests/s,
 * the ways taking turns. Each way gets `samples`: { microseconds, p50, p99 } per round.
 */
export async function measureCpuRounds(ways, { rate, seconds, rounds, expect }) {
  const headersOf = (way) => ({ "content-type": "application/json", authorization: `Bearer ${way.token}` });
  for (const way of ways) {
    way.samples = [];
    way.payload = JSON.stringify(way.body);
    const check = await fetch(way.server.url, { method: "POST", headers: headersOf(way), body: way.payload });
    const text = await check.text();
    if (check.status !== 200 || !text.includes(expect)) throw new Error(`${way.name}: ${check.status} ${text}`);
  }
  const run = async (way, durationSeconds) => {
    const before = cpuNanoseconds(way.server.pid);
    const result = await steadyLoad({
      url: way.server.url,
      body: way.payload,
      headers: headersOf(way),
      rate,
      durationSeconds,
      verifyBody: (text) => text.includes(expect),
    });
    const cpu = cpuNanoseconds(way.server.pid) - before;
    if (result.errors > 0) throw new Error(`${way.name}: ${result.errors} requests failed`);
    return { microseconds: cpu / 1000 / result.requests, p50: result.p50, p99: result.p99 };
  };
  for (const way of ways) await run(way, 2); // warm-up: JIT and caches
  for (let round = 0; round < rounds; round++) {
    for (const way of ways) {
      way.samples.push(await run(way, seconds));
      await sleep(200);
    }
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Prints each way's median CPU per request, its ratio to the first way (`baseline`), p50, p99 and every round. */
export function printCpuRounds(ways, { rate, seconds, rounds, what, baseline }) {
  console.log(
    `${rounds} rounds × ${seconds} s at ${rate} requests/s of ${what}; CPU per request of the server process`,
  );
  const width = Math.max(...ways.map((way) => way.name.length)) + 1;
  const first = median(ways[0].samples.map((s) => s.microseconds));
  for (const way of ways) {
    const cpu = median(way.samples.map((s) => s.microseconds));
    const p50 = median(way.samples.map((s) => s.p50));
    const p99 = median(way.samples.map((s) => s.p99));
    const rounds = way.samples.map((s) => s.microseconds.toFixed(0)).join(", ");
    console.log(
      `${way.name.padEnd(width)} ${cpu.toFixed(0).padStart(5)} µs CPU/request (${(cpu / first).toFixed(2)} × ${baseline})  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  rounds: ${rounds}`,
    );
  }
}
