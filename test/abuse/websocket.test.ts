// The WebSocket attacks of issue 22 against the server as `npm start` runs it (its 160 MB heap):
// sockets and subscriptions from one IP past every cap, the anonymous share, idle anonymous
// sockets, a deeply nested message, and the fan-out of one event to 200 subscribers with a nested
// selection during an updatePost storm (on each database: PostgreSQL forwards events by NOTIFY).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import WebSocket from "ws";

import { type AbuseServer, type BystanderReport, isAlive, startAbuseServer, startBystander } from "../helpers/abuse.js";
import { type ApiClient, gql, registerUser } from "../helpers/api.js";
import { DATABASES } from "../helpers/databases.js";
import { freePort } from "../helpers/processes.js";

/** A raw graphql-transport-ws socket: every message it received, parsed, and how it closed. */
class RawSocket {
  readonly messages: any[] = [];
  /** Messages counted without parsing them (the fan-out's events), by subscription id. */
  readonly counts = new Map<string, number>();
  /** The last `next` payload of each subscription id, kept as text. */
  readonly last = new Map<string, string>();
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(
    readonly ws: WebSocket,
    options: { countOnly?: boolean } = {},
  ) {
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      }),
    );
    ws.on("message", (data: Buffer) => {
      const text = data.toString("utf8");
      if (options.countOnly && text.startsWith('{"id":"') && text.includes('"type":"next"')) {
        const id = text.slice(7, text.indexOf('"', 7));
        this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
        this.last.set(id, text);
      } else this.messages.push(JSON.parse(text));
      this.wake();
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Sends connection_init and resolves with the acknowledgement, or with the close that came instead. */
  async init(payload?: Record<string, unknown>): Promise<"ack" | { code: number; reason: string }> {
    this.send(payload ? { type: "connection_init", payload } : { type: "connection_init" });
    const ack = await Promise.race([
      this.until((s) => s.messages.some((m) => m.type === "connection_ack")).then(() => "ack" as const),
      this.closed,
    ]);
    return ack;
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  /** The `error` message of subscription `id`, once it arrived. */
  async errorOf(id: string, timeoutMs = 10_000): Promise<any> {
    await this.until((s) => s.messages.some((m) => m.id === id && m.type === "error"), timeoutMs);
    return this.messages.find((m) => m.id === id && m.type === "error").payload[0];
  }

  until(done: (socket: RawSocket) => boolean, timeoutMs = 10_000): Promise<void> {
    if (done(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`condition not met within ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (!done(this)) return this.waiters.push(check);
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

type Opened =
  { kind: "open"; socket: RawSocket } | { kind: "refused"; status: number; retryAfter: string | undefined; body: any };

/** Opens a graphql-transport-ws socket, or reports how the upgrade was refused (status, Retry-After, JSON body). */
function open(abuse: AbuseServer, headers: Record<string, string> = {}, countOnly = false): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(abuse.server.graphqlUrl.replace(/^http/, "ws"), "graphql-transport-ws", { headers });
    ws.once("unexpected-response", (request, response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => {
        request.destroy();
        resolve({
          kind: "refused",
          status: response.statusCode ?? 0,
          retryAfter: response.headers["retry-after"],
          body: body ? JSON.parse(body) : undefined,
        });
      });
    });
    ws.once("error", reject);
    ws.once("open", () => resolve({ kind: "open", socket: new RawSocket(ws, { countOnly }) }));
  });
}

function opened(result: Opened): RawSocket {
  assert.equal(result.kind, "open", JSON.stringify(result));
  return (result as { socket: RawSocket }).socket;
}

/** A server as npm start runs it, with its metrics listener on a free port. */
async function startServer(kind: "sqlite" | "postgres", env: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const abuse = await startAbuseServer(kind, { METRICS_PORT: String(metricsPort), ...env });
  const api: ApiClient = { gql: (query, options) => gql(abuse.server.graphqlUrl, query, options) };
  const metric = async (name: string): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : NaN;
  };
  const refusals = (limit: string) => metric(`gta_limit_refusals_total{limit="${limit}"}`);
  return { abuse, api, metric, refusals };
}

function assertBystanderServed(report: BystanderReport): void {
  assert.ok(report.ok > 0, "the bystander got answers");
  assert.equal(report.failed, 0, "no bystander request failed");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const closeAll = (sockets: RawSocket[]) => {
  for (const socket of sockets) socket.ws.terminate();
};

describe("WebSocket budgets under attack (the server as npm start runs it)", () => {
  it("refuses sockets past WS_MAX_CONNECTIONS_PER_IP at the upgrade with 429, and subscriptions past the per-connection and per-IP caps, with the defaults", async (t) => {
    const { abuse, metric, refusals } = await startServer("sqlite");
    const sockets: RawSocket[] = [];
    try {
      const bystander = startBystander(abuse);
      const started = performance.now();
      // The default caps: 50 sockets per IP, 20 subscriptions per socket, 200 per IP. 60 sockets, 21 subscriptions each.
      const refusedUpgrades: Opened[] = [];
      for (let i = 0; i < 60; i++) {
        const result = await open(abuse);
        if (result.kind === "open") sockets.push(result.socket);
        else refusedUpgrades.push(result);
      }
      assert.equal(sockets.length, 50);
      assert.equal(refusedUpgrades.length, 10);
      for (const refused of refusedUpgrades) {
        assert.equal(refused.kind, "refused");
        if (refused.kind !== "refused") continue;
        assert.equal(refused.status, 429);
        assert.equal(refused.retryAfter, "5");
        assert.equal(refused.body.errors[0].extensions.code, "RATE_LIMITED");
        assert.equal(refused.body.errors[0].extensions.retryAfter, 5);
      }
      for (const socket of sockets) assert.equal(await socket.init(), "ack");

      const codes = new Map<string, number>();
      for (const [i, socket] of sockets.entries()) {
        for (let j = 0; j <= 20; j++)
          socket.subscribe(
            `s${j}`,
            `subscription { postUpdated(id: "${i * 100 + j}") { id title body author { username } } }`,
          );
        // Subscribes are handled in order on one socket: once the 21st answered, the 20 before it were decided.
        await socket.errorOf("s20");
        for (const message of socket.messages.filter((m) => m.type === "error")) {
          const code = message.payload[0].extensions.code as string;
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
      // Sockets 1 to 10 hold 20 each (the 21st: BAD_REQUEST); every later subscribe is past the IP's 200.
      assert.equal(await metric("gta_subscriptions_active"), 200);
      assert.deepEqual(Object.fromEntries(codes), { BAD_REQUEST: 10, RATE_LIMITED: 840 });
      const rateLimited = sockets[10]!.messages.find((m) => m.type === "error").payload[0];
      assert.equal(rateLimited.extensions.retryAfter, 5);
      assert.match(rateLimited.message, /Too many subscriptions from this address/);
      assert.equal(await refusals("WS_MAX_CONNECTIONS_PER_IP"), 10);
      assert.equal(await refusals("WS_MAX_SUBSCRIPTIONS_PER_CONNECTION"), 10);
      assert.equal(await refusals("WS_MAX_SUBSCRIPTIONS_PER_IP"), 840);
      assert.equal(await metric("gta_subscription_connections"), 50);

      const report = await bystander.stop();
      assert.ok(isAlive(abuse), "the server is still running");
      assertBystanderServed(report);
      t.diagnostic(
        `60 sockets x 21 subscriptions from one IP in ${Math.round(performance.now() - started)} ms: 50 sockets and 200 subscriptions held, ` +
          `peak RSS ${report.peakRssMb.toFixed(0)} MB, bystander p50 ${report.p50Ms.toFixed(1)} ms p99 ${report.p99Ms.toFixed(1)} ms (${report.ok} answers)`,
      );
    } finally {
      closeAll(sockets);
      await abuse.stop();
    }
  });

  it("keeps a share for signed-in users: anonymous connection_init past WS_MAX_ANONYMOUS_CONNECTIONS is closed with 1013, the total cap refuses upgrades with 503, per IP as TRUST_PROXY reads it", async (t) => {
    const { abuse, api, refusals } = await startServer("sqlite", {
      TRUST_PROXY: "loopback",
      WS_MAX_CONNECTIONS: "6",
      WS_MAX_CONNECTIONS_PER_IP: "2",
      WS_MAX_ANONYMOUS_CONNECTIONS: "3",
    });
    const sockets: RawSocket[] = [];
    const from = (ip: string) => ({ "x-forwarded-for": ip });
    try {
      const bystander = startBystander(abuse);
      const user = await registerUser(api, "ws-signed-in");
      // Two sockets per forwarded address; the third from the same one is refused.
      for (let i = 0; i < 2; i++) sockets.push(opened(await open(abuse, from("10.0.0.1"))));
      const third = await open(abuse, from("10.0.0.1"));
      assert.equal(third.kind === "refused" && third.status, 429);
      for (const socket of sockets) assert.equal(await socket.init(), "ack");
      const anonymous3 = opened(await open(abuse, from("10.0.0.2")));
      sockets.push(anonymous3);
      assert.equal(await anonymous3.init(), "ack");
      // The anonymous share (3) is full: the next anonymous init is closed, a signed-in one is not.
      const anonymous4 = opened(await open(abuse, from("10.0.0.2")));
      assert.deepEqual(await anonymous4.init(), { code: 1013, reason: "Too many anonymous connections" });
      const signedIn = opened(await open(abuse, from("10.0.0.3")));
      sockets.push(signedIn);
      assert.equal(await signedIn.init({ authorization: `Bearer ${user.accessToken}` }), "ack");
      // 4 open; two more fill WS_MAX_CONNECTIONS (6), and the seventh upgrade is refused with 503.
      for (let i = 0; i < 2; i++) sockets.push(opened(await open(abuse, from("10.0.0.4"))));
      const seventh = await open(abuse, from("10.0.0.5"));
      assert.equal(seventh.kind, "refused");
      if (seventh.kind === "refused") {
        assert.equal(seventh.status, 503);
        assert.equal(seventh.retryAfter, "5");
        assert.equal(seventh.body.errors[0].extensions.code, "SERVICE_UNAVAILABLE");
      }
      assert.equal(await refusals("WS_MAX_CONNECTIONS_PER_IP"), 1);
      assert.equal(await refusals("WS_MAX_ANONYMOUS_CONNECTIONS"), 1);
      assert.equal(await refusals("WS_MAX_CONNECTIONS"), 1);

      const report = await bystander.stop();
      assert.ok(isAlive(abuse));
      assertBystanderServed(report);
      t.diagnostic(`bystander p50 ${report.p50Ms.toFixed(1)} ms, p99 ${report.p99Ms.toFixed(1)} ms`);
    } finally {
      closeAll(sockets);
      await abuse.stop();
    }
  });

  it("closes an anonymous socket without a subscription after WS_ANONYMOUS_IDLE_TIMEOUT with 4408 even while it pings; a subscribed or signed-in socket stays", async (t) => {
    const { abuse, api, refusals } = await startServer("sqlite", { WS_ANONYMOUS_IDLE_TIMEOUT: "1s" });
    const sockets: RawSocket[] = [];
    try {
      const user = await registerUser(api, "ws-idle-user");
      const [idle, subscribed, signedIn] = [
        opened(await open(abuse)),
        opened(await open(abuse)),
        opened(await open(abuse)),
      ];
      sockets.push(idle, subscribed, signedIn);
      const start = performance.now();
      assert.equal(await idle.init(), "ack");
      assert.equal(await subscribed.init(), "ack");
      assert.equal(await signedIn.init({ authorization: `Bearer ${user.accessToken}` }), "ack");
      subscribed.subscribe("live", `subscription { postUpdated(id: "1") { id } }`);
      // The idle one keeps the protocol's ping going (and ws answers the server's pings by itself).
      const pinger = setInterval(() => idle.ws.readyState === WebSocket.OPEN && idle.send({ type: "ping" }), 200);
      const closed = await idle.closed;
      clearInterval(pinger);
      const idleFor = performance.now() - start;
      assert.deepEqual(closed, { code: 4408, reason: "Idle timeout" });
      assert.ok(idleFor >= 900 && idleFor < 5000, `closed after ${Math.round(idleFor)} ms`);
      assert.ok(
        idle.messages.some((m) => m.type === "pong"),
        "its pings were answered",
      );
      await sleep(1500);
      assert.equal(subscribed.ws.readyState, WebSocket.OPEN, "a socket with a subscription is not idle");
      assert.equal(signedIn.ws.readyState, WebSocket.OPEN, "a signed-in socket is never closed for idleness");
      // Once its last subscription completes, the anonymous socket is idle again.
      subscribed.send({ id: "live", type: "complete" });
      const completedAt = performance.now();
      assert.deepEqual(await subscribed.closed, { code: 4408, reason: "Idle timeout" });
      t.diagnostic(
        `idle anonymous socket closed after ${Math.round(idleFor)} ms; the other ${Math.round(performance.now() - completedAt)} ms after its subscription completed`,
      );
      assert.equal(await refusals("WS_ANONYMOUS_IDLE_TIMEOUT"), 2);
      assert.ok(isAlive(abuse));
    } finally {
      closeAll(sockets);
      await abuse.stop();
    }
  });

  it("closes a socket with 4400 for a message nested deeper than JSON_MAX_NESTING, found before parsing (a 1 MB one too)", async (t) => {
    const { abuse, refusals } = await startServer("sqlite");
    const sockets: RawSocket[] = [];
    try {
      const bystander = startBystander(abuse);
      const fine = opened(await open(abuse));
      sockets.push(fine);
      const nested = (depth: number) =>
        `{"type":"connection_init","payload":{"x":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
      // Depth 2 (the message and its payload) plus 30 arrays: 32, the limit, is accepted.
      fine.send(nested(30));
      await fine.until((s) => s.messages.some((m) => m.type === "connection_ack"));
      const timings: number[] = [];
      for (const depth of [31, 1000, 500_000]) {
        const socket = opened(await open(abuse));
        sockets.push(socket);
        const sentAt = performance.now();
        socket.send(nested(depth));
        assert.deepEqual(await socket.closed, { code: 4400, reason: "Message nested too deeply" });
        timings.push(performance.now() - sentAt);
      }
      assert.equal(await refusals("JSON_MAX_NESTING"), 3);
      const report = await bystander.stop();
      assert.ok(isAlive(abuse));
      assertBystanderServed(report);
      t.diagnostic(
        `closed 4400 in ${timings.map((ms) => ms.toFixed(1)).join(", ")} ms (depth 31, 1000, 500000 = 1 MB); bystander p99 ${report.p99Ms.toFixed(1)} ms`,
      );
    } finally {
      closeAll(sockets);
      await abuse.stop();
    }
  });

  for (const kind of DATABASES) {
    it(`fan-out (${kind}): 200 anonymous subscriptions with a nested selection during an updatePost storm; the server stays up, a bystander is served, every subscriber gets the latest post, a reader that stops reading is closed`, async (t) => {
      const { abuse, api, refusals, metric } = await startServer(kind, {
        // 10 sockets x 20 for the attack, and 20 more on the socket that stops reading.
        WS_MAX_SUBSCRIPTIONS_PER_IP: "220",
      });
      const sockets: RawSocket[] = [];
      try {
        const author = await registerUser(api, `ws-fanout-${kind}`);
        const body = "x".repeat(5000);
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) {
          const res = await api.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
            token: author.accessToken,
            variables: { input: { title: `post ${i}`, body } },
          });
          assert.ok(res.body.data?.createPost, JSON.stringify(res.body));
          ids.push(res.body.data.createPost.id);
        }
        const target = ids[0]!;
        // What the attack sent before SUBSCRIPTION_MAX_COST: a selection of 1,600 post bodies on every event.
        const probe = opened(await open(abuse));
        sockets.push(probe);
        assert.equal(await probe.init(), "ack");
        probe.subscribe(
          "heavy",
          `subscription($id: ID!) { postUpdated(id: $id) { author { posts(first: 40) { author { posts(first: 40) { body } } } } } }`,
          { id: target },
        );
        const heavy = await probe.errorOf("heavy");
        assert.equal(heavy.extensions.code, "GRAPHQL_VALIDATION_FAILED");
        assert.match(heavy.message, /Cost limit of 100 exceeded/);
        assert.equal(await refusals("SUBSCRIPTION_MAX_COST"), 1);
        probe.ws.terminate();

        // The heaviest selection the subscription cost allows: 4 post bodies per event (cost 27 + 3 x 23 = 96).
        const selection = `subscription($id: ID!) { postUpdated(id: $id) { id title body author { username posts(first: 3) { title body } } } }`;
        for (let i = 0; i < 10; i++) {
          const socket = opened(await open(abuse, {}, true));
          sockets.push(socket);
          assert.equal(await socket.init(), "ack");
          for (let j = 0; j < 20; j++) socket.subscribe(`s${j}`, selection, { id: target });
        }
        // One more socket whose client stops reading: its unsent events pile up on the server.
        const stalled = opened(await open(abuse, {}, true));
        assert.equal(await stalled.init(), "ack");
        for (let j = 0; j < 20; j++) stalled.subscribe(`s${j}`, selection, { id: target });
        await sleep(300);
        assert.equal(await metric("gta_subscriptions_active"), 220);
        (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();

        const bystander = startBystander(abuse);
        const started = performance.now();
        const update = (title: string) =>
          api.gql(`mutation($id: ID!, $title: String!) { updatePost(id: $id, input: { title: $title }) { id } }`, {
            token: author.accessToken,
            variables: { id: target, title },
          });
        // The storm: 24 updates, 8 at a time, each answered before its events are delivered.
        const mutationMs: number[] = [];
        let updated = 0;
        for (let round = 0; round < 3; round++) {
          await Promise.all(
            Array.from({ length: 8 }, async (_, k) => {
              const sent = performance.now();
              const res = await update(`storm ${round}.${k}`);
              mutationMs.push(performance.now() - sent);
              if (res.body.data?.updatePost) updated++;
              else assert.equal(res.body.errors?.[0]?.extensions?.code, "RATE_LIMITED", JSON.stringify(res.body));
            }),
          );
        }
        // Then the last state, which every subscriber must end with (newer events push older ones out of a full queue).
        await sleep(200);
        const final = await update("final");
        assert.ok(final.body.data?.updatePost, JSON.stringify(final.body));
        const attack = sockets.slice(-10);
        const finalSeen = (socket: RawSocket) =>
          [...Array(20).keys()].every((j) => socket.last.get(`s${j}`)?.includes('"title":"final"'));
        for (const socket of attack) await socket.until(finalSeen, 30_000);
        const deliveredMs = performance.now() - started;
        const delivered = attack.reduce((sum, s) => sum + [...s.counts.values()].reduce((a, b) => a + b, 0), 0);
        const report = await bystander.stop();

        assert.ok(isAlive(abuse), "the server is still running");
        assertBystanderServed(report);
        // The stalled reader was closed once its unsent bytes passed WS_MAX_BUFFERED_BYTES.
        const closedStalled = await refusals("WS_MAX_BUFFERED_BYTES");
        assert.ok(closedStalled >= 1, `stalled sockets closed: ${closedStalled}`);
        (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
        const stalledClose = await stalled.closed;
        assert.ok([1013, 1006].includes(stalledClose.code), JSON.stringify(stalledClose));
        const dropped = await refusals("SUBSCRIPTION_MAX_QUEUED_EVENTS");
        const sorted = [...mutationMs].sort((a, b) => a - b);
        t.diagnostic(
          `${kind}: ${updated + 1} updates to 200 subscribers: ${delivered} events (${dropped} dropped from full queues) in ${Math.round(deliveredMs)} ms; ` +
            `updatePost p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms; stalled reader closed ${stalledClose.code}; ` +
            `peak RSS ${report.peakRssMb.toFixed(0)} MB; bystander p50 ${report.p50Ms.toFixed(1)} ms p99 ${report.p99Ms.toFixed(1)} ms (${report.ok} answers)`,
        );
      } finally {
        closeAll(sockets);
        await abuse.stop();
      }
    });
  }
});
