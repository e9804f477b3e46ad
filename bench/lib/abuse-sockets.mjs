// The attacks of bench/abuse.mjs over WebSocket (graphql-ws's graphql-transport-ws protocol, spoken
// with the `ws` package directly so that thousands of sockets stay cheap for the bench): ws-flood,
// ws-idle and fanout. Each returns { got, details }: what the attacker got back, and numbers.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import WebSocket from "ws";

import { codeOf, errorName, formatCounts, gql, register, seedPosts, Tally } from "./abuse-harness.mjs";

/**
 * Opens one socket and sends connection_init; resolves with the connection once it is acknowledged,
 * refused or closed (`state`: "acked", "HTTP 503", "close 4429", "ECONNRESET", "timeout"…). The
 * connection keeps counting: `next` events, subscription `error`s by code, and its close code.
 */
export function connect(server, { payload = {}, timeoutMs = 10_000 } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(server.wsUrl, "graphql-transport-ws", { handshakeTimeout: timeoutMs });
    const conn = { ws, state: "connecting", events: 0, eventBytes: 0, errors: new Tally(), closeCode: undefined };
    conn.closed = new Promise((onClose) => (conn.onClose = onClose));
    let settled = false;
    const done = (state) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.state = state;
      resolve(conn);
    };
    const timer = setTimeout(() => {
      done("timeout");
      ws.terminate();
    }, timeoutMs);
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload })));
    ws.on("message", (data) => {
      // Events may be large: only their head is read.
      const head = data.length > 65_536 ? data.toString("utf8", 0, 200) : data.toString();
      const type = /"type":"(\w+)"/.exec(head)?.[1];
      if (type === "connection_ack") done("acked");
      else if (type === "ping") ws.send('{"type":"pong"}');
      else if (type === "next") {
        conn.events++;
        conn.eventBytes += data.length;
        if (head.includes('"errors"')) conn.errors.add(`event error ${codeOf(head) || "?"}`);
      } else if (type === "error") conn.errors.add(codeOf(head) || "error");
    });
    ws.on("unexpected-response", (request, response) => {
      done(`HTTP ${response.statusCode}`);
      response.resume();
      request.destroy();
    });
    ws.on("error", (error) => done(errorName(error)));
    ws.on("close", (code) => {
      conn.closeCode = code;
      conn.closedAt = performance.now();
      conn.onClose(code);
      done(`close ${code}`);
    });
  });
}

export function subscribe(conn, id, query, variables) {
  if (conn.ws.readyState !== WebSocket.OPEN) return;
  conn.ws.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } }));
}

/** What happened to `conns`: their states at connect, closes by the server after, subscription errors. */
function summarise(conns, since) {
  const got = new Tally();
  for (const c of conns) {
    got.add(c.state);
    if (c.state === "acked" && c.closeCode !== undefined && c.closedAt < since) got.add(`then close ${c.closeCode}`);
    for (const [code, n] of Object.entries(c.errors?.counts ?? {})) got.add(`subscription ${code}`, n);
  }
  return got;
}

const FLOOD_SUBSCRIPTION = "subscription($id: ID!) { postUpdated(id: $id) { id title body updatedAt } }";

/** Ramps anonymous sockets with 20 postUpdated subscriptions each, 100 at a time, until refused or the cap. */
export async function wsFlood(ctx) {
  const { server, options } = ctx;
  const conns = [];
  const deadline = performance.now() + 60_000;
  let refusedAt;
  while (conns.length < options.sockets && performance.now() < deadline && server.alive()) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, options.sockets - conns.length) }, () => connect(server)),
    );
    conns.push(...batch);
    for (const c of batch) {
      if (c.state !== "acked") continue;
      for (let s = 0; s < 20; s++) subscribe(c, `s${s}`, FLOOD_SUBSCRIPTION, { id: randomUUID() });
    }
    const refused = batch.filter((c) => c.state !== "acked").length;
    if (refused > 0 && refusedAt === undefined)
      refusedAt = conns.length - batch.length + batch.findIndex((c) => c.state !== "acked");
    if (refused > batch.length / 2) break;
    await sleep(150);
  }
  // Hold what was accepted for a few seconds, with the bystander asking.
  const holdUntil = performance.now() + 5000;
  while (performance.now() < holdUntil && server.alive()) await sleep(100);
  const got = summarise(conns, Infinity);
  const open = conns.filter((c) => c.ws.readyState === WebSocket.OPEN).length;
  for (const c of conns) c.ws.terminate();
  return {
    got: `${conns.length} sockets: ${got}`,
    details: { sockets: conns.length, firstRefusedAt: refusedAt ?? null, openAtEnd: open, outcomes: got.counts },
  };
}

/** A socket that never sends connection_init; resolves once open or refused (`state`). */
function openSilent(server) {
  return new Promise((resolve) => {
    const ws = new WebSocket(server.wsUrl, "graphql-transport-ws", { handshakeTimeout: 10_000 });
    const conn = { ws, state: "connecting" };
    const done = (state) => {
      if (conn.state === "connecting") conn.state = state;
      resolve(conn);
    };
    ws.on("open", () => done("open"));
    ws.on("unexpected-response", (request, response) => {
      done(`HTTP ${response.statusCode}`);
      response.resume();
      request.destroy();
    });
    ws.on("error", (error) => done(errorName(error)));
    ws.on("close", (code) => {
      Object.assign(conn, { closeCode: code, closedAt: performance.now() });
      done(`close ${code}`);
    });
  });
}

/**
 * Anonymous sockets held for options.idleSeconds: 5 that never send connection_init (graphql-ws
 * closes those after its init timeout), then 45 acknowledged ones that only answer pings. Which
 * are closed, when, and with what code?
 */
export async function wsIdle(ctx) {
  const { server, options } = ctx;
  const started = performance.now();
  const silent = await Promise.all(Array.from({ length: 5 }, () => openSilent(server)));
  const conns = await Promise.all(Array.from({ length: 45 }, () => connect(server)));
  const until = started + options.idleSeconds * 1000;
  while (performance.now() < until && server.alive()) await sleep(200);
  const held = (list) => {
    const closed = list.filter((c) => c.closeCode !== undefined);
    const secs = closed.map((c) => (c.closedAt - started) / 1000).sort((a, b) => a - b);
    const codes = new Tally();
    for (const c of closed) codes.add(`close ${c.closeCode}`);
    return {
      closed: closed.length,
      open: list.length - closed.length,
      closedAfterS: secs.length ? [secs[0], secs.at(-1)].map((s) => Number(s.toFixed(1))) : null,
      codes: codes.counts,
    };
  };
  const acked = conns.filter((c) => c.state === "acked");
  const idle = held(acked);
  const noInit = held(silent.filter((c) => c.state === "open"));
  const states = (list, ok) =>
    list.every((c) => c.state === ok) ? `${list.length} ${ok}` : formatCounts(summarise(list, 0).counts);
  for (const c of [...conns, ...silent]) c.ws.terminate();
  const range = (h) => (h.closedAfterS ? ` after ${h.closedAfterS.join("-")} s` : "");
  return {
    got:
      `${states(conns, "acked")}; after ${options.idleSeconds} s ${idle.open} still open, ` +
      `${idle.closed} closed${range(idle)}${idle.closed ? ` (${formatCounts(idle.codes)})` : ""}; ` +
      `no connection_init (${states(silent, "open")}): ${noInit.closed} closed${range(noInit)}` +
      `${noInit.closed ? ` (${formatCounts(noInit.codes)})` : ""}`,
    details: {
      idleSeconds: options.idleSeconds,
      idle,
      noInit,
      connect: summarise(conns, 0).counts,
      silentConnect: summarise(silent, 0).counts,
    },
  };
}

const FANOUT_SUBSCRIPTION =
  "subscription($id: ID!) { postUpdated(id: $id) { id author { posts(first: 40) { author { posts(first: 40) { title } } } } } }";

/** An author with 40 posts (seeded by SQL), for fanout. */
export async function prepareFanout(ctx) {
  ctx.author = await register(ctx.server, "fanout_author");
  ctx.postIds = await seedPosts(ctx.server, ctx.author.id, 40, () => "x".repeat(1000));
}

/**
 * 200 anonymous sockets, one nested postUpdated subscription each (cost ~4,965), then 500
 * updatePost (at most 30 s of them), and at most 20 s for the events to arrive.
 */
export async function fanout(ctx) {
  const { server } = ctx;
  const [postId] = ctx.postIds;
  const conns = [];
  for (let i = 0; i < 200 && server.alive(); i += 50) {
    conns.push(...(await Promise.all(Array.from({ length: 50 }, () => connect(server)))));
  }
  for (const c of conns) if (c.state === "acked") subscribe(c, "1", FANOUT_SUBSCRIPTION, { id: postId });
  await sleep(1000);
  const subscribed = conns.filter(
    (c) => c.state === "acked" && c.ws.readyState === WebSocket.OPEN && c.errors.total === 0,
  ).length;
  const updates = new Tally();
  const delivered = () => conns.reduce((n, c) => n + c.events, 0);
  const started = performance.now();
  let sent = 0;
  const burstUntil = started + 30_000;
  ctx.partial = () => `updatePost: ${updates}; events ${delivered()}`;
  const worker = async () => {
    while (sent < 500 && performance.now() < burstUntil && server.alive()) {
      const n = sent++;
      try {
        const r = await gql(
          server,
          "mutation($id: ID!, $i: UpdatePostInput!) { updatePost(id: $id, input: $i) { id } }",
          { id: postId, i: { title: `title ${n}` } },
          ctx.author.token,
          { timeoutMs: 20_000 },
        );
        updates.add(`${r.status}${r.code ? ` ${r.code}` : ""}`);
      } catch (error) {
        updates.add(errorName(error));
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const burstMs = performance.now() - started;
  // Let the events drain (or the server fall over): at most 20 s.
  const okUpdates = updates.counts["200"] ?? 0;
  const expected = subscribed * okUpdates;
  const drainUntil = performance.now() + 20_000;
  while (performance.now() < drainUntil && server.alive() && delivered() < expected) await sleep(250);
  const eventMb = conns.reduce((n, c) => n + c.eventBytes, 0) / 1048576;
  const got = summarise(conns, Infinity);
  for (const c of conns) c.ws.terminate();
  return {
    got:
      `subscribe: ${got}; updatePost: ${updates} in ${(burstMs / 1000).toFixed(1)} s; ` +
      `events ${delivered()} (${eventMb.toFixed(0)} MB) for ${subscribed} subscriptions × ${okUpdates} updates answered`,
    details: {
      sockets: conns.length,
      subscribed,
      subscribe: got.counts,
      updates: updates.counts,
      burstMs: Math.round(burstMs),
      eventsDelivered: delivered(),
      eventsExpected: expected,
      eventMb: Number(eventMb.toFixed(1)),
    },
  };
}
