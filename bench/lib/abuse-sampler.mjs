// The bystander and the memory sampler of bench/abuse.mjs, in a process of their own so that the
// attacker's work in the bench process (thousands of sockets, 30 MB answers) does not delay them.
//
// Forked with IPC and started with { url, token, pid, metricsUrl }: two well-behaved clients ask
// `{ me { id } }` (with a signed-in token) and `{ __typename }`, one request after another (10 s
// deadline each); every 50 ms the server's VmRSS and VmHWM are read from /proc and every 250 ms
// gta_nodejs_heap_size_used_bytes from its metrics listener. The parent sends { phase } to start
// a new phase (idle, during, …) and { stop: true } to get { phases } back, each phase with the
// bystander's answers and the peaks of memory seen in it.
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const TIMEOUT_MS = 10_000;
let config;
let phase;
const phases = {};
let running = true;

function newPhase(name) {
  phases[name] ??= {
    latencies: [],
    failed: 0,
    failures: {},
    peakRssMb: 0,
    peakHwmMb: 0,
    peakHeapMb: 0,
    heapAsked: 0,
    heapAnswered: 0,
  };
  phase = phases[name];
}

function failIn(p, reason) {
  p.failed++;
  p.failures[reason] = (p.failures[reason] ?? 0) + 1;
}

const inFlight = new Set();

async function client(body, check) {
  while (running) {
    const at = phase;
    const started = performance.now();
    const request = { at };
    inFlight.add(request);
    try {
      const response = await fetch(config.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(check.token ? { authorization: `Bearer ${check.token}` } : {}),
        },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const text = await response.text();
      if (!running && !inFlight.has(request)) return;
      if (response.status === 200 && check.ok(text)) at.latencies.push(performance.now() - started);
      else failIn(at, `${response.status} ${/"code":"([A-Z_]+)"/.exec(text)?.[1] ?? ""}`.trim());
    } catch (error) {
      if (!running && !inFlight.has(request)) return;
      failIn(at, error.name === "TimeoutError" ? "timeout" : (error.cause?.code ?? error.name));
      // A dead server refuses at once: do not spin.
      await sleep(100);
    } finally {
      inFlight.delete(request);
    }
    // About 40 requests/s each at most: a client, not a load.
    await sleep(25);
  }
}

function readProc() {
  try {
    const status = readFileSync(`/proc/${config.pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? 0);
    phase.peakRssMb = Math.max(phase.peakRssMb, kb("VmRSS") / 1024);
    phase.peakHwmMb = Math.max(phase.peakHwmMb, kb("VmHWM") / 1024);
  } catch {
    // gone
  }
}

async function readHeap() {
  while (running) {
    const at = phase;
    at.heapAsked++;
    try {
      const response = await fetch(config.metricsUrl, { signal: AbortSignal.timeout(2000) });
      const match = /^gta_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(await response.text());
      if (match) {
        at.peakHeapMb = Math.max(at.peakHeapMb, Number(match[1]) / 1048576);
        at.heapAnswered++;
      }
    } catch {
      // blocked or gone: the peak is what was seen
    }
    await sleep(250);
  }
}

function summary(p) {
  const sorted = [...p.latencies].sort((a, b) => a - b);
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
  return {
    ok: sorted.length,
    failed: p.failed,
    failures: p.failures,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: sorted.at(-1) ?? null,
    peakRssMb: p.peakRssMb,
    peakHwmMb: p.peakHwmMb,
    peakHeapMb: p.peakHeapMb,
    heapAsked: p.heapAsked,
    heapAnswered: p.heapAnswered,
  };
}

process.on("message", async (message) => {
  if (message.start) {
    config = message.start;
    newPhase("warmup");
    const proc = setInterval(readProc, 50);
    const loops = [
      client('{"query":"{ me { id } }"}', { token: config.token, ok: (t) => t.includes(`"id":"${config.userId}"`) }),
      client('{"query":"{ __typename }"}', { ok: (t) => t.includes('"__typename":"Query"') }),
      readHeap(),
    ];
    config.loops = Promise.all(loops).finally(() => clearInterval(proc));
  } else if (message.phase) {
    readProc();
    newPhase(message.phase);
  } else if (message.stop) {
    readProc();
    running = false;
    // A request still unanswered 3 s after the end counts as a failure of the phase it began in.
    await Promise.race([config.loops, sleep(3000)]);
    for (const request of inFlight) failIn(request.at, "unanswered at the end");
    inFlight.clear();
    process.send({ phases: Object.fromEntries(Object.entries(phases).map(([name, p]) => [name, summary(p)])) }, () =>
      process.exit(0),
    );
  }
});
