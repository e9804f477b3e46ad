// Measurement: the HTTP edges under the heavy versions of their attacks, against the server as
// `npm start` runs it (the bundle with npm start's memory flags, through test/helpers/abuse.ts, so
// run `npm run build` first), with a bystander asking `{ __typename }` throughout.
//
//   node bench/http-edges.mjs nested [seconds]        1 MB bodies of nested arrays at 4.3 a second
//   node bench/http-edges.mjs bodies [connections]    1 MB bodies stalled before their last byte (default 300)
//   node bench/http-edges.mjs slow [connections]      connections holding partial headers (default 1,600)
//   node bench/http-edges.mjs shutdown [runs] [drain] SIGTERM under 16 keep-alive clients; resets per run
//
// Each prints the server's peak resident size, the bystander's p50/p99, and what the attacker got.
import http from "node:http";
import net from "node:net";

const helpers = new URL("../dist/test/helpers/", import.meta.url);
const { startAbuseServer, startBystander, isAlive } = await import(new URL("abuse.js", helpers).href);

const mode = process.argv[2];
const arg = (i, fallback) => (process.argv[i] === undefined ? fallback : process.argv[i]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MB = 1024 * 1024;
const round = (n) => (Number.isFinite(n) ? Number(n.toFixed(1)) : n);
const summary = (report) => ({
  ok: report.ok,
  failed: report.failed,
  p50Ms: round(report.p50Ms),
  p99Ms: round(report.p99Ms),
});

function post(port, body, agent = false) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/graphql",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode, ms: performance.now() - started, reused: req.reusedSocket }),
        );
        res.on("error", (e) => resolve({ error: e.code ?? e.message, reused: req.reusedSocket }));
      },
    );
    req.on("error", (e) => resolve({ error: e.code ?? e.message, reused: req.reusedSocket }));
    req.end(body);
  });
}

const tally = (values) => values.reduce((m, v) => ((m[v] = (m[v] ?? 0) + 1), m), {});

if (mode === "nested") {
  const seconds = Number(arg(3, 8));
  const abuse = await startAbuseServer("sqlite");
  try {
    const depth = Math.floor((MB - 60) / 2);
    const body = `{"query":"{ __typename }","variables":{"x":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
    const bystander = startBystander(abuse);
    const sent = [];
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      sent.push(post(abuse.server.port, body));
      await sleep(1000 / 4.3);
    }
    const results = await Promise.all(sent);
    const report = await bystander.stop();
    const ms = results.map((r) => r.ms).sort((a, b) => a - b);
    console.log({
      attack: `${results.length} nested 1 MB bodies`,
      statuses: tally(results.map((r) => r.status ?? r.error)),
      attackerP50Ms: round(ms[Math.floor(ms.length / 2)]),
      alive: isAlive(abuse),
      peakRssMb: round(report.peakRssMb),
      bystander: summary(report),
    });
  } finally {
    await abuse.stop();
  }
} else if (mode === "bodies" || mode === "slow") {
  const connections = Number(arg(3, mode === "bodies" ? 300 : 1600));
  const abuse = await startAbuseServer("sqlite", mode === "slow" ? { HTTP_HEADERS_TIMEOUT: "30s" } : {});
  try {
    const before = abuse.rssMb();
    const bystander = startBystander(abuse);
    const sockets = [];
    const answers = [];
    for (let i = 0; i < connections; i++) {
      const socket = net.connect(abuse.server.port, "127.0.0.1", () => {
        if (mode === "slow") return socket.write("POST /graphql HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        socket.write(
          `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MB}\r\n\r\n`,
        );
        socket.write(Buffer.alloc(MB - 1, 0x20));
      });
      socket.setEncoding("latin1");
      socket.once("data", (text) => answers.push(text.slice(0, 12)));
      socket.on("error", () => undefined);
      sockets.push(socket);
      if (i % 100 === 99) await sleep(50);
    }
    let peak = 0;
    for (let k = 0; k < 10; k++) {
      if (mode === "slow") for (const s of sockets) if (!s.destroyed) s.write("a");
      await sleep(1000);
      peak = Math.max(peak, abuse.rssMb() ?? 0);
    }
    const report = await bystander.stop();
    const open = sockets.filter((s) => !s.destroyed).length;
    console.log({
      attack: `${connections} ${mode === "bodies" ? "stalled 1 MB bodies" : "connections holding partial headers"}`,
      answers: tally(answers),
      stillOpen: open,
      alive: isAlive(abuse),
      rssBeforeMb: round(before),
      peakRssMb: round(Math.max(peak, report.peakRssMb)),
      bystander: summary(report),
    });
    for (const s of sockets) s.destroy();
  } finally {
    await abuse.stop();
  }
} else if (mode === "shutdown") {
  const runs = Number(arg(3, 8));
  const drain = arg(4, "0s");
  for (let run = 0; run < runs; run++) {
    const abuse = await startAbuseServer("sqlite", { SHUTDOWN_DRAIN: drain });
    const outcomes = [];
    let sigtermAt = Infinity;
    let stop = false;
    const client = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      while (!stop) {
        const startedAt = performance.now();
        const r = await post(abuse.server.port, '{"query":"{ posts(first: 5) { id } }"}', agent);
        outcomes.push(r.error ? `${startedAt < sigtermAt ? "before SIGTERM: " : ""}${r.error}` : r.status);
        if (r.error) await sleep(20);
      }
      agent.destroy();
    };
    const load = Promise.all(Array.from({ length: 16 }, client));
    await sleep(1000);
    sigtermAt = performance.now();
    const exit = await abuse.server.signal("SIGTERM", 30_000);
    const exitMs = performance.now() - sigtermAt;
    await sleep(100);
    stop = true;
    await load;
    console.log(
      `run ${run}: exit ${JSON.stringify(exit)} ${exitMs.toFixed(0)} ms after SIGTERM (drain ${drain})`,
      JSON.stringify(tally(outcomes)),
    );
    await abuse.stop();
  }
} else {
  console.error("usage: node bench/http-edges.mjs nested|bodies|slow|shutdown [n] [drain]");
  process.exit(2);
}
