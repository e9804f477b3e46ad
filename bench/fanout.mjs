// `node bench/fanout.mjs`: whether a mutation answers before its subscription events are delivered,
// and what the fan-out costs the writer and a bystander, with 0, 1,000 and 10,000 subscribers.
//
// For each count, a fresh server as `npm start` runs it (bench/lib/abuse-harness.mjs's startServer:
// the bundle with npm start's memory flags, production, SQLite in a fresh DATA_DIR or, with
// --postgres, a fresh schema), its socket and subscription budgets raised through the environment to
// the count (every socket comes from 127.0.0.1). A process of its own (lib/fanout-subscribers.mjs)
// opens the sockets, signed in as one user, each with `postCreated { id }` subscriptions. Then a writer sends
// createPost mutations: 5 to warm up, --writes one at a time (each waiting until every subscriber has
// its event), then --burst at once. A bystander asks `{ me { id } }` one request after another all
// along, and the server's VmRSS is read every 50 ms and its VmHWM at the end.
//
// Reports per count: createPost's latency (one at a time p50/p99, the burst's p50/max), the time
// from each mutation's answer to its first and last delivery, events lost and duplicated, events
// delivered before their mutation was answered, the bystander's p50/p99 idle and during the
// writes, and the server's peak resident size. A measurement: it exits 0 whatever it finds.
import { fork } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { hrtime } from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { describeExit, gql, loadCheckout, register, startServer, stopServer } from "./lib/abuse-harness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const HELP = `Usage: node bench/fanout.mjs [--subscribers 0,1000,10000] [--per-socket 1] [--writes 20]
                            [--burst 20] [--heap <MB>] [--postgres <url>] [--json <file>]

--subscribers  the counts to measure, each on a fresh server
--per-socket   subscriptions per socket (sockets = subscribers / per-socket)
--writes       createPost mutations one at a time, each waiting for its deliveries
--burst        createPost mutations sent at once after them
--heap         --max-old-space-size for the server instead of npm start's (after its flags, so it wins)
--postgres     PostgreSQL at <url> (a fresh schema per server) instead of SQLite`;

const now = () => Number(hrtime.bigint()) / 1e6;
const log = (message) => process.stderr.write(`${message}\n`);

function parseArgs(argv) {
  const options = { subscribers: [0, 1000, 10000], perSocket: 1, writes: 20, burst: 20 };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i];
    const arg = argv[i];
    if (arg === "--subscribers") options.subscribers = value().split(",").map(Number);
    else if (arg === "--per-socket") options.perSocket = Number(value());
    else if (arg === "--writes") options.writes = Number(value());
    else if (arg === "--burst") options.burst = Number(value());
    else if (arg === "--heap") options.heap = Number(value());
    else if (arg === "--postgres") options.postgres = value();
    else if (arg === "--json") options.json = value();
    else {
      console.log(HELP);
      process.exit(arg === "--help" ? 0 : 2);
    }
  }
  return options;
}

/** The budgets a count of signed-in subscribers from one address needs, all raised to it. */
function budgets(subscribers, perSocket) {
  const sockets = String(Math.ceil(subscribers / perSocket) + 100);
  const subs = String(subscribers + 100);
  return {
    HTTP_MAX_CONNECTIONS: String(Number(sockets) + 1000),
    WS_MAX_CONNECTIONS: sockets,
    WS_MAX_CONNECTIONS_PER_IP: sockets,
    WS_MAX_SUBSCRIPTIONS: subs,
    WS_MAX_SUBSCRIPTIONS_PER_IP: subs,
    CREATE_POST_MAX_PER_USER: "0",
    WRITES_MAX_PER_USER: "0",
  };
}

function ask(child, message, key) {
  return new Promise((resolve) => {
    const onMessage = (reply) => {
      if (!(key in reply)) return;
      child.off("message", onMessage);
      resolve(reply[key]);
    };
    child.on("message", onMessage);
    child.send(message);
  });
}

/** Every subscriber has `ids`, or nothing more arrived for 5 s: the subscribers' records of them. */
async function deliveries(subscribers, ids, expected) {
  let last = -1;
  let still = now();
  for (;;) {
    const report = await ask(subscribers, { report: ids }, "report");
    const total = report.reduce((n, r) => n + r.count, 0);
    if (total >= expected * ids.length) return report;
    if (total !== last) [last, still] = [total, now()];
    else if (now() - still > 5000) return report;
    await sleep(20);
  }
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
}

const CREATE = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";

/** One createPost: { id, sent, answered } on the shared clock. */
async function createPost(server, token, title) {
  const sent = now();
  const r = await gql(server, CREATE, { i: { title, body: "fan-out" } }, token);
  const answered = now();
  if (!r.json?.data) throw new Error(`createPost: ${r.status} ${r.text.slice(0, 300)}`);
  return { id: r.json.data.createPost.id, sent, answered };
}

/** `{ me { id } }` one after another until stopped, each latency tagged with the phase it began in. */
function bystander(server, user) {
  const state = { phase: "idle", running: true, latencies: {}, failed: 0 };
  state.done = (async () => {
    while (state.running) {
      const phase = state.phase;
      const started = now();
      try {
        const r = await gql(server, "{ me { id } }", undefined, user.token, { timeoutMs: 10_000 });
        if (r.status === 200 && r.text.includes(user.id)) (state.latencies[phase] ??= []).push(now() - started);
        else state.failed++;
      } catch {
        state.failed++;
      }
      await sleep(5);
    }
  })();
  return state;
}

function memory(pid) {
  let status = "";
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    // gone
  }
  const mb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1] ?? 0) / 1024;
  return { rss: mb("VmRSS"), hwm: mb("VmHWM") };
}

/** --writes createPost one at a time, each until delivered, then --burst at once, and their deliveries. */
async function writes(server, token, subscribers, expected, options) {
  const one = [];
  for (let i = 0; i < options.writes; i++) {
    const post = await createPost(server, token, `one ${i}`);
    const [report] = await deliveries(subscribers, [post.id], expected);
    one.push({ ...post, ...report });
  }
  const burst = await Promise.all(
    Array.from({ length: options.burst }, (_, i) => createPost(server, token, `burst ${i}`)),
  );
  const burstReport = await deliveries(
    subscribers,
    burst.map((p) => p.id),
    expected,
  );
  return { one, burst, burstReport };
}

async function measure(count, options, checkout) {
  const server = await startServer({
    main: join(root, "dist/bundle/main.js"),
    postgresUrl: options.postgres,
    env: {
      ...budgets(count, options.perSocket),
      ...(options.heap
        ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --max-old-space-size=${options.heap}` }
        : {}),
    },
    checkout,
  });
  const subscribers = fork(new URL("./lib/fanout-subscribers.mjs", import.meta.url), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const writer = await register(server, "writer");
    const reader = await register(server, "bystander");
    // One signed-in user behind every subscriber (a session has no cap on its sockets).
    const follower = await register(server, "follower");
    const sockets = Math.ceil(count / options.perSocket);
    const opened = await ask(
      subscribers,
      {
        open: {
          wsUrl: server.wsUrl,
          token: follower.token,
          sockets,
          perSocket: options.perSocket,
          query: "subscription { postCreated { id } }",
        },
      },
      "opened",
    );
    const expected = opened.subscriptions;
    log(`  ${opened.acked} sockets acknowledged (${opened.refused} refused), ${expected} subscriptions`);
    // Warm-up: the code paths compiled, and every subscription live before anything is timed.
    for (let i = 0; i < 5; i++) {
      const post = await createPost(server, writer.token, `warm ${i}`);
      await deliveries(subscribers, [post.id], expected);
    }
    const rssBefore = memory(server.pid).rss;
    const by = bystander(server, reader);
    await sleep(3000);
    by.phase = "during";
    let rssPeak = rssBefore;
    const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, memory(server.pid).rss)), 50);
    const { one, burst, burstReport } = await writes(server, writer.token, subscribers, expected, options);
    by.phase = "after";
    clearInterval(rssTimer);
    by.running = false;
    await by.done;
    const mem = memory(server.pid);
    const stats = await ask(subscribers, { stats: true }, "stats");
    return summarise({ count, opened, one, burst, burstReport, by, rssBefore, rssPeak, mem, stats, expected });
  } catch (error) {
    const hwm = server.alive() ? memory(server.pid).hwm : null;
    await sleep(500);
    log(`  failed: ${error.stack}; server ${server.alive() ? "alive" : describeExit(server)}`);
    log(server.log().slice(-1500));
    return { subscribers: count, failed: `${server.alive() ? error.message : `server ${describeExit(server)}`}`, hwm };
  } finally {
    subscribers.send({ close: true });
    await stopServer(server);
  }
}

function summarise({ count, opened, one, burst, burstReport, by, rssBefore, rssPeak, mem, stats, expected }) {
  const reports = [...one, ...burstReport];
  const received = reports.reduce((n, r) => n + r.count, 0);
  const answeredLast = Math.max(...burst.map((p) => p.answered));
  const delivered = one.filter((r) => r.count > 0);
  return {
    subscribers: count,
    writes: one.length,
    subscriptions: expected,
    sockets: opened.acked,
    refused: opened.refused,
    createPostMs: {
      p50: quantile(
        one.map((p) => p.answered - p.sent),
        0.5,
      ),
      p99: quantile(
        one.map((p) => p.answered - p.sent),
        0.99,
      ),
    },
    burstMs: {
      p50: quantile(
        burst.map((p) => p.answered - p.sent),
        0.5,
      ),
      max: Math.max(...burst.map((p) => p.answered - p.sent)),
    },
    answerToFirstMs: {
      p50: quantile(
        delivered.map((r) => r.first - r.answered),
        0.5,
      ),
      min: Math.min(...delivered.map((r) => r.first - r.answered)),
    },
    answerToLastMs: {
      p50: quantile(
        delivered.map((r) => r.last - r.answered),
        0.5,
      ),
      max: Math.max(...delivered.map((r) => r.last - r.answered)),
    },
    burstLastAnswerToLastDeliveryMs: burstReport.some((r) => r.count)
      ? Math.max(...burstReport.map((r) => r.last ?? 0)) - answeredLast
      : null,
    deliveredBeforeAnswer: one.filter((r) => r.count > 0 && r.first < r.answered).length,
    lost: expected * reports.length - received,
    duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
    bystander: Object.fromEntries(
      Object.entries(by.latencies).map(([phase, l]) => [
        phase,
        { n: l.length, p50: quantile(l, 0.5), p99: quantile(l, 0.99) },
      ]),
    ),
    bystanderFailed: by.failed,
    rssMb: { withSubscribers: rssBefore, peakDuringWrites: rssPeak, hwm: mem.hwm },
    subscriberSide: stats,
  };
}

const f = (n) => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n >= 100 ? n.toFixed(0) : n.toFixed(1));

function table(rows) {
  const lines = [
    "| subscribers | createPost p50/p99 ms, one at a time | burst p50/max ms | answer → first delivery p50 ms | answer → last delivery p50/max ms | burst: last answer → last delivery ms | delivered before the answer | lost / duplicated | bystander `me` p50/p99 ms, idle → during | RSS MB with subscribers → peak (VmHWM) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    if (r.failed) {
      lines.push(`| ${r.subscribers.toLocaleString("en")} | ${r.failed} |`);
      continue;
    }
    const b = r.bystander;
    lines.push(
      `| ${r.subscriptions.toLocaleString("en")} | ${f(r.createPostMs.p50)}/${f(r.createPostMs.p99)} | ${f(r.burstMs.p50)}/${f(r.burstMs.max)} | ${f(r.answerToFirstMs.p50)} | ${f(r.answerToLastMs.p50)}/${f(r.answerToLastMs.max)} | ${f(r.burstLastAnswerToLastDeliveryMs)} | ${r.subscriptions ? `${r.deliveredBeforeAnswer} of ${r.writes}` : "-"} | ${r.lost} / ${r.duplicates} | ${f(b.idle?.p50)}/${f(b.idle?.p99)} → ${f(b.during?.p50)}/${f(b.during?.p99)} | ${f(r.rssMb.withSubscribers)} → ${f(r.rssMb.peakDuringWrites)} (${f(r.rssMb.hwm)}) |`,
    );
  }
  return lines.join("\n");
}

const options = parseArgs(process.argv.slice(2));
const checkout = await loadCheckout(root, root);
const rows = [];
log(
  `fan-out bench: ${options.postgres ? "PostgreSQL" : "SQLite"}, ${options.writes} writes one at a time, a burst of ${options.burst}`,
);
for (const count of options.subscribers) {
  log(`- ${count} subscribers …`);
  rows.push(await measure(count, options, checkout));
  log(`  ${JSON.stringify(rows.at(-1))}`);
}
if (options.json)
  writeFileSync(options.json, `${JSON.stringify({ date: new Date().toISOString(), options, rows }, null, 2)}\n`);
console.log(table(rows));
process.exit(0);
