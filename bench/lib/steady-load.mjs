// An open-loop load at a steady rate, for latency under a fixed offered load.
//
// autocannon's rate limit lets each connection send its whole quota at the start of every second,
// so a "500 requests/s" run is really a burst of 500 requests once a second, and its latencies
// measure that burst's queue. Here requests leave evenly spaced (one every 1000/rate ms) whether
// or not earlier ones have been answered, and each latency counts from the moment the request was
// due, so a stalled server shows up in full (no coordinated omission).
import { Agent, request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Sends `rate` POSTs per second to `url` for `durationSeconds` over at most `connections`
 * keep-alive connections; resolves with `{ rps, p50, p99, errors, requests }` (milliseconds).
 * A request fails when it errors, times out (`timeoutSeconds`), is not 200, or `verifyBody`
 * returns false for its body.
 */
export async function steadyLoad({
  url,
  body,
  headers = {},
  rate,
  durationSeconds,
  connections = 64,
  timeoutSeconds = 30,
  verifyBody = () => true,
}) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const payload = Buffer.from(body);
  const total = Math.round(rate * durationSeconds);
  const spacing = 1000 / rate;
  const latencies = [];
  let errors = 0;
  let pending = 0;

  const send = (due) => {
    pending++;
    const finish = (ok) => {
      if (ok) latencies.push(performance.now() - due);
      else errors++;
      pending--;
    };
    const req = request(
      {
        agent,
        method: "POST",
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        headers: { ...headers, "content-length": payload.length },
        timeout: timeoutSeconds * 1000,
      },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => finish(response.statusCode === 200 && verifyBody(Buffer.concat(chunks).toString())));
        response.on("error", () => finish(false));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => finish(false));
    req.end(payload);
  };

  const start = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    while (sent < total && start + sent * spacing <= now) {
      send(start + sent * spacing);
      sent++;
    }
    await sleep(1);
  }
  const deadline = performance.now() + timeoutSeconds * 1000;
  while (pending > 0 && performance.now() < deadline) await sleep(5);
  const elapsedSeconds = (performance.now() - start) / 1000;
  errors += pending;
  agent.destroy();

  latencies.sort((a, b) => a - b);
  const percentile = (p) =>
    latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)];
  return {
    rps: latencies.length / elapsedSeconds,
    p50: percentile(50),
    p99: percentile(99),
    errors,
    requests: latencies.length + errors,
  };
}
