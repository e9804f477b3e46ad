// The HTTP edges under attack, against the server as `npm start` runs it (test/helpers/abuse.ts):
// headers sent a byte a second, a body sent a kilobyte a second, more connections than the cap, a
// burst of 1 MB bodies of nested arrays, and a stop under load from keep-alive clients. Each time
// the server stays up, a bystander keeps being served, and the attacker gets the documented
// refusal, counted in gta_limit_refusals_total. Short timeouts and a small cap keep it quick.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, it } from "node:test";

import { JSON_MAX_NESTING } from "../../src/http/json-nesting.js";
import { BODY_LIMIT_BYTES } from "../../src/http/request-limits.js";
import { type AbuseServer, isAlive, startAbuseServer, startBystander } from "../helpers/abuse.js";
import { DATABASES } from "../helpers/databases.js";
import { freePort } from "../helpers/processes.js";

const HEADERS_TIMEOUT_MS = 2000;
const REQUEST_TIMEOUT_MS = 4000;
const MAX_CONNECTIONS = 40;
const MAX_BODY_BYTES_IN_FLIGHT = 4 * 1024 * 1024;
/** Node checks the timeouts every quarter of the headers timeout here (500 ms); the rest is a loaded machine. */
const MARGIN_MS = 2500;
/** The origin a development server allows by default: such requests also get the CORS headers. */
const CORS_ORIGIN = "https://studio.apollographql.com";

/** What a raw connection saw: the bytes the server wrote, and when (after opening) it closed. */
interface RawOutcome {
  text: string;
  closedAfterMs: number;
  error?: string;
}

/** Opens a raw TCP connection and runs `script` on it; resolves when the connection closes. */
function rawConnection(
  port: number,
  script: (socket: net.Socket) => NodeJS.Timeout | undefined,
): { socket: net.Socket; closed: Promise<RawOutcome> } {
  const started = performance.now();
  const socket = net.connect(port, "127.0.0.1");
  let text = "";
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (text += chunk));
  socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  socket.once("connect", () => (timer = script(socket)));
  const closed = new Promise<RawOutcome>((resolve) =>
    socket.once("close", () => {
      clearInterval(timer);
      resolve({ text, closedAfterMs: performance.now() - started, ...(error ? { error } : {}) });
    }),
  );
  return { socket, closed };
}

/** The status and JSON body of a raw HTTP response text. */
function parseResponse(text: string): { status: number; body: any } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const body = text.slice(text.indexOf("\r\n\r\n") + 4);
  return { status, body: JSON.parse(body) };
}

/** One request on its own connection through node:http (`agent` for keep-alive, else a fresh connection). */
function request(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent },
): Promise<{ status?: number; body?: string; connection?: string; error?: string; reused?: boolean }> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "POST",
        path: options.path ?? "/graphql",
        agent: options.agent ?? false,
        headers: {
          ...(options.body !== undefined
            ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(options.body)) }
            : {}),
          ...options.headers,
        },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode, body, connection: res.headers.connection, reused: req.reusedSocket }),
        );
        res.on("error", (e: NodeJS.ErrnoException) =>
          resolve({ error: e.code ?? e.message, reused: req.reusedSocket }),
        );
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message, reused: req.reusedSocket }));
    req.end(options.body);
  });
}

/** gta_limit_refusals_total{limit} from the metrics listener. */
async function refusals(metricsUrl: string, limit: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const match = new RegExp(`^gta_limit_refusals_total\\{limit="${limit}"\\} (\\d+)$`, "m").exec(text);
  assert.ok(match, `gta_limit_refusals_total{limit="${limit}"} is exported`);
  return Number(match[1]);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

describe("HTTP edges under attack (the server as npm start runs it)", () => {
  let abuse: AbuseServer;
  let metricsUrl: string;
  before(async () => {
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    abuse = await startAbuseServer("sqlite", {
      HTTP_HEADERS_TIMEOUT: `${HEADERS_TIMEOUT_MS}ms`,
      HTTP_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms`,
      HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      HTTP_MAX_BODY_BYTES_IN_FLIGHT: String(MAX_BODY_BYTES_IN_FLIGHT),
      METRICS_PORT: String(metricsPort),
    });
  });
  after(async () => {
    await abuse?.stop();
  });

  it("closes connections whose headers come a byte a second with 408 within HTTP_HEADERS_TIMEOUT, and a bystander is served", async (t) => {
    const bystander = startBystander(abuse);
    const slow = Array.from({ length: 5 }, () =>
      rawConnection(abuse.server.port, (socket) => {
        socket.write("POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
        return setInterval(() => socket.write("a"), 1000);
      }),
    );
    const outcomes = await Promise.all(slow.map((c) => c.closed));
    const report = await bystander.stop();

    for (const outcome of outcomes) {
      assert.ok(outcome.closedAfterMs >= HEADERS_TIMEOUT_MS - 100, `closed after ${outcome.closedAfterMs} ms`);
      assert.ok(outcome.closedAfterMs < HEADERS_TIMEOUT_MS + MARGIN_MS, `closed after ${outcome.closedAfterMs} ms`);
      assert.deepEqual(parseResponse(outcome.text), {
        status: 408,
        body: {
          errors: [
            {
              message: `The request's headers did not arrive within ${HEADERS_TIMEOUT_MS / 1000} s.`,
              extensions: { code: "BAD_REQUEST" },
            },
          ],
        },
      });
    }
    assert.ok(isAlive(abuse));
    assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    assert.ok((await refusals(metricsUrl, "HTTP_HEADERS_TIMEOUT")) >= outcomes.length);
    t.diagnostic(
      `slow headers closed after ${outcomes.map((o) => o.closedAfterMs.toFixed(0)).join(", ")} ms; ` +
        `bystander ${report.ok} ok, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms, peak RSS ${report.peakRssMb.toFixed(0)} MB`,
    );
  });

  it("closes connections whose 1 MB body comes a kilobyte a second with 408 within HTTP_REQUEST_TIMEOUT, and a bystander is served", async (t) => {
    const bystander = startBystander(abuse);
    const slow = Array.from({ length: 5 }, () =>
      rawConnection(abuse.server.port, (socket) => {
        socket.write(
          `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${BODY_LIMIT_BYTES}\r\n\r\n`,
        );
        return setInterval(() => socket.write(" ".repeat(1024)), 1000);
      }),
    );
    const outcomes = await Promise.all(slow.map((c) => c.closed));
    const report = await bystander.stop();

    for (const outcome of outcomes) {
      assert.ok(outcome.closedAfterMs >= REQUEST_TIMEOUT_MS - 100, `closed after ${outcome.closedAfterMs} ms`);
      assert.ok(outcome.closedAfterMs < REQUEST_TIMEOUT_MS + MARGIN_MS, `closed after ${outcome.closedAfterMs} ms`);
      assert.deepEqual(parseResponse(outcome.text), {
        status: 408,
        body: {
          errors: [
            {
              message: `The request did not arrive whole within ${REQUEST_TIMEOUT_MS / 1000} s.`,
              extensions: { code: "BAD_REQUEST" },
            },
          ],
        },
      });
    }
    assert.ok(isAlive(abuse));
    assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    assert.ok((await refusals(metricsUrl, "HTTP_REQUEST_TIMEOUT")) >= outcomes.length);
    t.diagnostic(
      `slow bodies closed after ${outcomes.map((o) => o.closedAfterMs.toFixed(0)).join(", ")} ms; ` +
        `bystander ${report.ok} ok, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`,
    );
  });

  it("closes connections past HTTP_MAX_CONNECTIONS unread, refuses a fresh one while full, and serves a bystander on its open keep-alive connection", async (t) => {
    // The bystander's connection is open before the attack: the cap refuses new connections only.
    const bystander = startBystander(abuse);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await refusals(metricsUrl, "HTTP_MAX_CONNECTIONS");
    const attempts = MAX_CONNECTIONS + 20;
    // Each sends the start of a request and stays within the headers timeout while the test runs.
    const attack = Array.from({ length: attempts }, () =>
      rawConnection(abuse.server.port, (socket) => {
        socket.write("POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        return undefined;
      }),
    );
    const closedAt = attack.map(() => Infinity);
    attack.forEach((c, i) => void c.closed.then((o) => (closedAt[i] = o.closedAfterMs)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const dropped = closedAt.filter((ms) => ms < 500);
    const fresh = await request(abuse.server.port, { body: '{"query":"{ __typename }"}' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const c of attack) c.socket.destroy();
    const report = await bystander.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const afterwards = await request(abuse.server.port, { body: '{"query":"{ __typename }"}' });
    const counted = (await refusals(metricsUrl, "HTTP_MAX_CONNECTIONS")) - before;

    // The bystander holds one connection (and the cap counts it): the rest of the cap is accepted.
    assert.ok(dropped.length >= attempts - MAX_CONNECTIONS + 1, `${dropped.length} of ${attempts} closed at once`);
    assert.ok(dropped.length <= attempts - MAX_CONNECTIONS + 3, `${dropped.length} of ${attempts} closed at once`);
    for (const c of await Promise.all(attack.map((a) => a.closed)))
      assert.ok(!c.text.startsWith("HTTP/1.1 2"), "no attacker connection got an answer");
    assert.ok(fresh.error !== undefined, `a fresh connection while full is refused: ${JSON.stringify(fresh)}`);
    assert.equal(counted, dropped.length + 1, "every connection closed unread is counted");
    assert.equal(afterwards.status, 200, "once the attack ends, fresh connections are served again");
    assert.ok(isAlive(abuse));
    assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    t.diagnostic(
      `${attempts} connections: ${dropped.length} closed unread, a fresh request got ${fresh.error}; ` +
        `bystander ${report.ok} ok, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`,
    );
  });

  it("refuses a burst of 1 MB bodies of nested arrays with 400 before parsing them, with and without an Origin and in a GET, and a bystander is served", async (t) => {
    const depth = Math.floor((BODY_LIMIT_BYTES - 100) / 2);
    const nested = `{"query":"{ __typename }","variables":{"x":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    const expected = {
      errors: [
        {
          message: `The request's JSON nests deeper than ${JSON_MAX_NESTING} levels.`,
          extensions: { code: "BAD_REQUEST" },
        },
      ],
    };
    const before = await refusals(metricsUrl, "JSON_MAX_NESTING");
    const bystander = startBystander(abuse);
    const latencies: number[] = [];
    const statuses: string[] = [];
    const attacker = async (worker: number) => {
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        // Every other worker sends an Origin the development server allows (CORS on the same route).
        const res = await request(abuse.server.port, {
          body: nested,
          headers: worker % 2 === 1 ? { origin: CORS_ORIGIN } : {},
        });
        latencies.push(performance.now() - started);
        statuses.push(
          res.status === 400 && JSON.stringify(JSON.parse(res.body!)) === JSON.stringify(expected)
            ? "ok"
            : JSON.stringify(res).slice(0, 200),
        );
      }
    };
    await Promise.all([0, 1, 2, 3].map(attacker));
    const deepVariables = encodeURIComponent(`{"x":${"[".repeat(100)}${"]".repeat(100)}}`);
    const gets = await Promise.all(
      ([{}, { origin: CORS_ORIGIN }] as Record<string, string>[]).map((headers) =>
        request(abuse.server.port, {
          method: "GET",
          path: `/graphql?query=${encodeURIComponent("{ __typename }")}&variables=${deepVariables}`,
          headers: { "apollo-require-preflight": "1", ...headers },
        }),
      ),
    );
    const report = await bystander.stop();

    assert.deepEqual(statuses, Array(40).fill("ok"), "every nested body is refused with 400 and the nesting error");
    for (const get of gets) {
      assert.equal(get.status, 400, get.body);
      assert.deepEqual(JSON.parse(get.body!), expected);
    }
    assert.equal((await refusals(metricsUrl, "JSON_MAX_NESTING")) - before, 42);
    assert.ok(isAlive(abuse));
    assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    t.diagnostic(
      `40 nested 1 MB bodies, 4 at a time: refused in p50 ${median(latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms; ` +
        `bystander ${report.ok} ok, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms, peak RSS ${report.peakRssMb.toFixed(0)} MB`,
    );
  });

  it("holds at most HTTP_MAX_BODY_BYTES_IN_FLIGHT of 1 MB bodies stalled before their last byte, refusing the rest with 503, and a bystander is served", async (t) => {
    const before = await refusals(metricsUrl, "HTTP_MAX_BODY_BYTES_IN_FLIGHT");
    const bystander = startBystander(abuse);
    const attempts = 12;
    const stalled = Array.from({ length: attempts }, (_, i) =>
      rawConnection(abuse.server.port, (socket) => {
        // Every other one with an Origin the development server allows (CORS on the same route).
        socket.write(
          `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n${i % 2 === 1 ? `Origin: ${CORS_ORIGIN}\r\n` : ""}` +
            `Content-Type: application/json\r\nContent-Length: ${BODY_LIMIT_BYTES}\r\n\r\n`,
        );
        socket.write(" ".repeat(BODY_LIMIT_BYTES - 1));
        return undefined;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const peakRssMb = abuse.rssMb();
    for (const c of stalled) c.socket.destroy();
    const outcomes = await Promise.all(stalled.map((c) => c.closed));
    const report = await bystander.stop();

    const refused = outcomes.filter((o) => o.text !== "");
    for (const outcome of refused) {
      assert.match(outcome.text, /^HTTP\/1\.1 503 /);
      assert.match(outcome.text, /\r\nretry-after: 1\r\n/i);
      assert.deepEqual(parseResponse(outcome.text).body, {
        errors: [
          {
            message: "The server is receiving too many large request bodies at once; retry shortly.",
            extensions: { code: "SERVICE_UNAVAILABLE", retryAfter: 1 },
          },
        ],
      });
    }
    // Past each body's first 64 KB, 4 MB hold at most four of them: the others are refused.
    assert.ok(refused.length >= attempts - 4, `${refused.length} of ${attempts} refused`);
    assert.equal((await refusals(metricsUrl, "HTTP_MAX_BODY_BYTES_IN_FLIGHT")) - before, refused.length);
    assert.ok(isAlive(abuse));
    assert.ok(report.ok > 0 && report.failed === 0, JSON.stringify(report));
    t.diagnostic(
      `${attempts} stalled 1 MB bodies: ${refused.length} refused with 503, ${attempts - refused.length} held; ` +
        `RSS ${peakRssMb?.toFixed(0)} MB; bystander ${report.ok} ok, p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`,
    );
  });

  it("refuses a body over 1 MB with 413 with and without an Origin, counted", async () => {
    const before = await refusals(metricsUrl, "BODY_LIMIT_BYTES");
    const big = `{"query":"{ __typename }","x":"${"a".repeat(BODY_LIMIT_BYTES)}"}`;
    for (const headers of [{}, { origin: CORS_ORIGIN }] as Record<string, string>[]) {
      const res = await request(abuse.server.port, { body: big, headers });
      assert.equal(res.status, 413, JSON.stringify(res).slice(0, 200));
      assert.deepEqual(JSON.parse(res.body!), {
        errors: [
          {
            message: `Request body is larger than ${BODY_LIMIT_BYTES} bytes.`,
            extensions: { code: "PAYLOAD_TOO_LARGE" },
          },
        ],
      });
    }
    assert.equal((await refusals(metricsUrl, "BODY_LIMIT_BYTES")) - before, 2);
  });
});

const DRAIN_MS = 1500;
const CLIENTS = 8;

for (const kind of DATABASES) {
  describe(`SIGTERM with keep-alive clients sending (${kind})`, () => {
    it("answers /readyz 503 through the drain while serving every request, resets none, refuses new connections only after it, and exits 0", async (t) => {
      const abuse = await startAbuseServer(kind, { SHUTDOWN_DRAIN: `${DRAIN_MS}ms` });
      try {
        const port = abuse.server.port;
        const body = JSON.stringify({ query: "{ posts(first: 5) { id } }" });
        interface Outcome {
          startedAt: number;
          status?: number;
          error?: string;
          reused?: boolean;
          closes?: boolean;
        }
        const outcomes: Outcome[] = [];
        const readiness: { at: number; answeredAt: number; status?: number; body?: string }[] = [];
        let sigtermAt = Infinity;
        let exited = false;
        const t0 = performance.now();

        // Each client keeps one keep-alive connection busy, as a load balancer's pool does.
        const client = async () => {
          const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
          while (!exited) {
            const startedAt = performance.now() - t0;
            const res = await request(port, { body, agent });
            outcomes.push({ startedAt, ...res, closes: res.connection === "close" });
            if (res.error) await new Promise((resolve) => setTimeout(resolve, 20));
          }
          agent.destroy();
        };
        const probe = async () => {
          const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
          while (!exited) {
            const at = performance.now() - t0;
            const res = await request(port, { method: "GET", path: "/readyz", agent });
            readiness.push({ at, answeredAt: performance.now() - t0, status: res.status, body: res.body });
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          agent.destroy();
        };
        const load = Promise.all([...Array.from({ length: CLIENTS }, client), probe()]);
        await new Promise((resolve) => setTimeout(resolve, 600));
        sigtermAt = performance.now() - t0;
        const exit = await abuse.server.signal("SIGTERM", DRAIN_MS + 15_000);
        const exitAfterMs = performance.now() - t0 - sigtermAt;
        exited = true;
        await load;

        assert.deepEqual(exit, { code: 0, signal: null }, abuse.server.stderr);
        assert.ok(abuse.server.logs().some((line) => line.msg === "stopped"));
        // Nothing reset or cut: each request got an answer, or found the port closed before sending.
        const failures = outcomes.filter((o) => o.error !== undefined);
        assert.deepEqual(
          [...new Set(failures.map((o) => o.error))].filter((e) => e !== "ECONNREFUSED"),
          [],
          "no request reset or cut short",
        );
        for (const o of failures)
          assert.ok(
            o.startedAt >= sigtermAt + DRAIN_MS - 100,
            `refused at ${o.startedAt.toFixed(0)} ms, before the drain ended`,
          );
        for (const o of outcomes.filter((o) => o.error === undefined)) assert.equal(o.status, 200);
        const aroundSigterm = outcomes.filter((o) => o.startedAt >= sigtermAt - 200 && o.startedAt < sigtermAt + 200);
        assert.ok(
          aroundSigterm.some((o) => o.reused),
          "requests were sent on open keep-alive connections around SIGTERM",
        );
        assert.ok(
          aroundSigterm.every((o) => o.status === 200),
          "and every one was answered",
        );
        // The drain began when the server took the signal, which a loaded machine can deliver late:
        // from the first /readyz answered 503 on (at most a second after SIGTERM), every request is
        // answered with Connection: close until the drain ends.
        const drainSeenAt = Math.min(...readiness.filter((r) => r.status === 503).map((r) => r.answeredAt));
        assert.ok(drainSeenAt - sigtermAt < 1000, `draining ${(drainSeenAt - sigtermAt).toFixed(0)} ms after SIGTERM`);
        const drainFrom = Math.max(sigtermAt + 100, drainSeenAt);
        const duringDrain = outcomes.filter((o) => o.startedAt > drainFrom && o.startedAt < sigtermAt + DRAIN_MS - 100);
        assert.ok(
          duringDrain.length > 0 && duringDrain.every((o) => o.status === 200 && o.closes),
          "served through the drain, with Connection: close",
        );
        // Ready before, draining (503) through the drain.
        assert.ok(readiness.some((r) => r.at < sigtermAt && r.status === 200));
        const drained = readiness.filter((r) => r.at > drainFrom && r.at < sigtermAt + DRAIN_MS - 100);
        assert.ok(drained.length > 0, "/readyz was asked during the drain");
        for (const r of drained) assert.deepEqual([r.status, r.body], [503, '{"status":"draining"}']);
        assert.ok(exitAfterMs < DRAIN_MS + 10_000, `exited ${exitAfterMs.toFixed(0)} ms after SIGTERM`);
        t.diagnostic(
          `${outcomes.length} requests (${aroundSigterm.length} within 200 ms of SIGTERM, ${duringDrain.length} during the drain), ` +
            `${failures.length} refused after the drain (ECONNREFUSED), none reset; /readyz 503 ${drained.length} times; exit 0 after ${exitAfterMs.toFixed(0)} ms`,
        );
      } finally {
        await abuse.stop();
      }
    });
  });
}
