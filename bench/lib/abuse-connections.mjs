// The attacks of bench/abuse.mjs on connections themselves (raw TCP and node:http): slow-clients
// and shutdown. Each returns { got, details }: what the attacker got back, and numbers.
import { Agent, request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

import { errorName, formatCounts, Tally } from "./abuse-harness.mjs";

/** A raw TCP connection that records when and how the server ended it and the status lines it sent. */
function rawConnection(server) {
  return new Promise((resolve) => {
    const socket = tcpConnect(server.port, "127.0.0.1");
    const conn = { socket, opened: performance.now(), statuses: [], closedAt: undefined, error: undefined };
    let text = "";
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      for (const match of text.matchAll(/HTTP\/1\.1 (\d{3})/g)) conn.statuses.push(match[1]);
      text = text.slice(-20);
    });
    socket.on("error", (error) => (conn.error = errorName(error)));
    socket.on("close", () => (conn.closedAt = performance.now()));
    socket.once("connect", () => resolve(conn));
    socket.once("error", () => resolve(conn));
  });
}

function heldSummary(conns, since, windowS) {
  const closed = conns.filter((c) => c.closedAt !== undefined);
  const secs = closed.map((c) => (c.closedAt - since) / 1000).sort((a, b) => a - b);
  const answers = new Tally();
  for (const c of conns) answers.add(c.statuses.at(-1) ?? c.error ?? (c.closedAt ? "closed" : "open"));
  const median = secs.length ? secs[Math.floor(secs.length / 2)] : null;
  return {
    connections: conns.length,
    closed: closed.length,
    stillOpenAfterS: conns.length - closed.length,
    closedMedianS: median === null ? null : Number(median.toFixed(1)),
    closedMaxS: secs.length ? Number(secs.at(-1).toFixed(1)) : null,
    answers: answers.counts,
    text:
      closed.length === 0
        ? `all ${conns.length} held ≥ ${windowS} s [${formatCounts(answers.counts)}]`
        : `${closed.length}/${conns.length} closed (median ${median.toFixed(0)} s, max ${secs.at(-1).toFixed(0)} s)` +
          `${conns.length > closed.length ? `, ${conns.length - closed.length} held ≥ ${windowS} s` : ""} [${formatCounts(answers.counts)}]`,
  };
}

/**
 * For options.slowSeconds: 20 slowloris connections (a header line every 5 s, never finished), 20
 * slow bodies (Content-Length 100,000, a byte every 5 s), and 2,000 keep-alive connections that ask
 * `{ __typename }` once and then stay idle. How long the server holds each kind, and what it says.
 */
export async function slowClients(ctx) {
  const { server, options } = ctx;
  const started = performance.now();
  const headers = await Promise.all(Array.from({ length: 20 }, () => rawConnection(server)));
  for (const c of headers) c.socket.write("POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const bodies = await Promise.all(Array.from({ length: 20 }, () => rawConnection(server)));
  for (const c of bodies) {
    c.socket.write(
      "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    );
  }
  const idle = [];
  const request =
    'POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{"query":"{ __typename }"}';
  for (let i = 0; i < 2000 && server.alive(); i += 200) {
    const batch = await Promise.all(Array.from({ length: 200 }, () => rawConnection(server)));
    for (const c of batch) if (!c.error) c.socket.write(request);
    idle.push(...batch);
  }
  const idleSince = performance.now();
  const trickle = setInterval(() => {
    for (const c of headers)
      if (c.closedAt === undefined) c.socket.write(`X-Slow-${Math.random().toString(36).slice(2, 6)}: 1\r\n`);
    for (const c of bodies) if (c.closedAt === undefined) c.socket.write(" ");
  }, 5000);
  const until = started + options.slowSeconds * 1000;
  const allClosed = () => [...headers, ...bodies, ...idle].every((c) => c.closedAt !== undefined);
  while (performance.now() < until && server.alive() && !allClosed()) await sleep(250);
  clearInterval(trickle);
  const windowS = options.slowSeconds;
  const result = {
    slowHeaders: heldSummary(headers, started, windowS),
    slowBodies: heldSummary(bodies, started, windowS),
    idleKeepAlive: heldSummary(idle, idleSince, windowS),
  };
  for (const c of [...headers, ...bodies, ...idle]) c.socket.destroy();
  return {
    got: `headers: ${result.slowHeaders.text}; bodies: ${result.slowBodies.text}; idle keep-alive: ${result.idleKeepAlive.text}`,
    details: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, { ...v, text: undefined }])),
  };
}

/**
 * Keep-alive requests from 16 connections, SIGTERM after 1.5 s: requests reset, and whether
 * /readyz answered 503 before the listener closed (polled every 20 ms on new connections).
 * Rounds after the first start servers of their own (options.shutdownRounds).
 */
export async function shutdown(ctx) {
  const rounds = [];
  for (let round = 0; round < ctx.options.shutdownRounds; round++) {
    const server = round === 0 ? ctx.server : await ctx.startServer();
    try {
      rounds.push(await shutdownRound(server, round === 0 ? () => ctx.sampler.phase("after") : () => {}));
    } finally {
      if (round > 0) await ctx.stopServer(server);
    }
  }
  const total = new Tally();
  for (const r of rounds) for (const [k, v] of Object.entries(r.afterSignal)) total.add(k, v);
  const resets = rounds.map((r) => r.resets);
  const ready = rounds.map((r) => (r.ready503AtMs === null ? "no 503" : `503 at +${r.ready503AtMs} ms`));
  const exits = rounds.map((r) => `${r.exit} at +${r.exitAtMs} ms`);
  return {
    got:
      `${rounds.length} round${rounds.length === 1 ? "" : "s"}: resets ${resets.join("/")}; readyz ${ready.join(", ")}, listener closed at ` +
      `${rounds.map((r) => `+${r.listenerClosedAtMs ?? "?"}`).join("/")} ms; ${exits.join(", ")}; after SIGTERM: ${total}`,
    details: { rounds },
    exit: rounds[0]?.exit,
  };
}

async function shutdownRound(server, beforeSignal) {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const outcomes = { before: new Tally(), after: new Tally() };
  let signalAt;
  let stopping = false;
  // Counted when they end: a request in flight at the signal that is reset counts after it.
  const record = (key) => outcomes[signalAt === undefined ? "before" : "after"].add(key);
  const send = (body) =>
    new Promise((resolve) => {
      const finish = (key) => {
        record(key);
        resolve(key);
      };
      const req = request(
        {
          agent,
          host: "127.0.0.1",
          port: server.port,
          path: "/graphql",
          method: "POST",
          headers: { "content-type": "application/json" },
          timeout: 15_000,
        },
        (res) => {
          res.resume();
          res.on("end", () => finish(String(res.statusCode)));
          res.on("error", (error) => finish(errorName(error)));
        },
      );
      req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
      req.on("error", (error) =>
        finish(error.code === "ECONNRESET" || /hang up/.test(error.message) ? "ECONNRESET" : errorName(error)),
      );
      req.end(body);
    });
  const loop = async (i) => {
    const body =
      i % 2 ? '{"query":"{ __typename }"}' : '{"query":"{ posts(first: 50) { id title author { username } } }"}';
    while (!stopping) {
      const key = await send(body);
      // A closed listener refuses at once: do not spin.
      if (key === "ECONNREFUSED") await sleep(20);
    }
  };
  let ready503At = null;
  let listenerClosedAt = null;
  const readyz = async () => {
    while (!stopping) {
      const status = await new Promise((resolve) => {
        const req = request(
          { agent: false, host: "127.0.0.1", port: server.port, path: "/readyz", timeout: 2000 },
          (res) => {
            res.resume();
            resolve(res.statusCode);
          },
        );
        req.on("timeout", () => req.destroy(new Error("timeout")));
        req.on("error", (error) => resolve(errorName(error)));
        req.end();
      });
      if (signalAt !== undefined) {
        const at = Math.round(performance.now() - signalAt);
        if (status === 503 && ready503At === null && listenerClosedAt === null) ready503At = at;
        if (status === "ECONNREFUSED" && listenerClosedAt === null) listenerClosedAt = at;
      }
      await sleep(20);
    }
  };
  const loops = [...Array.from({ length: 16 }, (_, i) => loop(i)), readyz()];
  await sleep(1500);
  beforeSignal();
  signalAt = performance.now();
  server.child.kill("SIGTERM");
  const exit = await Promise.race([server.exited, sleep(30_000).then(() => undefined)]);
  await sleep(300);
  stopping = true;
  await Promise.all(loops);
  agent.destroy();
  return {
    exit: exit ? (exit.signal ?? `exit ${exit.code}`) : "still running after 30 s",
    exitAtMs: exit ? Math.round(exit.at - signalAt) : null,
    ready503AtMs: ready503At,
    listenerClosedAtMs: listenerClosedAt,
    resets: outcomes.after.counts.ECONNRESET ?? 0,
    beforeSignal: outcomes.before.counts,
    afterSignal: outcomes.after.counts,
  };
}
