// `node bench/abuse.mjs`: the heavy versions of the attacks of issue 22 against the server as
// `npm start` runs it, one fresh server per attack, with a bystander asking all along.
//
// It is a measurement, not a test (test/abuse/ holds the bounded tests): it reports, and exits 0
// whether the server survived or not; non-zero only on a bad command line. `--help` lists it all.
import { execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import { shutdown, slowClients } from "./lib/abuse-connections.mjs";
import {
  describeExit,
  loadCheckout,
  register,
  startSampler,
  startServer,
  stopServer,
  withoutArenaMax,
} from "./lib/abuse-harness.mjs";
import {
  fatAnswer,
  heavyAuthor,
  nestedBody,
  prepareFatPosts,
  prepareHeavyAuthor,
  prepareThrottled,
  sessions,
  throttledLogins,
} from "./lib/abuse-requests.mjs";
import { fanout, prepareFanout, wsFlood, wsIdle } from "./lib/abuse-sockets.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: node bench/abuse.mjs [options]

Runs each attack of issue 22 against a fresh server started as \`npm start\` runs it (the bundle
with npm start's memory flags, NODE_ENV=production, LOG_LEVEL=info into a file) on a fresh SQLite
DATA_DIR or PostgreSQL schema, restarted between attacks. A bystander (its own process) asks
\`{ me { id } }\` with a token and \`{ __typename }\` for 3 s idle and then during the attack; the
server's VmHWM and gta_nodejs_heap_size_used_bytes (from its metrics listener) are sampled. Prints
one row per attack: alive after, peak RSS, peak heap used, the bystander's p50/p99 idle -> during
and its failures, and what the attacker got back. Loopback only; every attack bounded in count
and time; about 6 minutes in all.

Attacks (--only takes a comma-separated list of these names):
  ws-flood          anonymous WebSockets, 20 postUpdated subscriptions each, 100 at a time until
                    refused or --sockets, held 5 s
  ws-idle           50 anonymous acknowledged sockets that only answer pings, and 5 that never send
                    connection_init, held --idle-seconds: which are closed, when, with what code
  fat-answer        an author with 40 posts of 20,000 characters (through the API with
                    CREATE_POST_MAX_PER_USER=0, by SQL if the API refuses), then 12 requests,
                    --fat-clients at a time, of post { author { posts(first: 40) { author {
                    posts(first: 40) { body } } } } }
  fat-answer-c0     the same with bodies of U+0001 (six bytes each in JSON)
  fanout            200 anonymous sockets with one postUpdated subscription each selecting 1,600
                    titles (cost ~4,965), then 500 updatePost by the author, 8 at a time
  sessions          logins of one account with 512-character user agents (4 at a time, at most
                    3,000 or 15 s), the rest of 3,000 sessions by SQL, then 10 requests (2 at a
                    time) of 15 aliased sessions { id userAgent } (first: 100 if required)
  heavy-author      an author with --posts posts (SQL), 4 anonymous clients for 15 s asking 15
                    pages of posts(first: 20, offset: 650..9750)
  nested-body       1 MB of nested arrays at 5 messages/s for 15 s, HTTP bodies and WebSocket
                    subscribe messages in turn
  throttled-logins  4 clients of failing logins for 10 s with the default throttle: audit rows,
                    database and log growth
  slow-clients      20 slowloris header senders, 20 slow bodies, 2,000 idle keep-alive
                    connections, watched for --slow-seconds: how long each is held
  shutdown          16 keep-alive connections of requests, SIGTERM after 1.5 s: resets, and
                    whether /readyz turned 503 before the listener closed (--shutdown-rounds)

Options:
  --server <dir>         the checkout whose dist/bundle/main.js to run (built) [this one]
  --postgres <url>       PostgreSQL instead of SQLite, a new schema per server (DATABASE_SCHEMA)
  --only <names>         only these attacks
  --heap <MB>            --max-old-space-size for the server instead of npm start's (point 9 of
                         issue 22: the worst-case heap of each attack without the cap ending it)
  --node-defaults        none of npm start's memory flags (Node's defaults, MALLOC_ARENA_MAX unset),
                         to set the flags' worst case beside Node's own (issue 28)
  --json [file]          the results as JSON: to the file, or (no file, or -) instead of the
                         table on stdout
  --sockets <n>          ws-flood's ceiling [3000]
  --posts <n>            heavy-author's posts [20000]
  --idle-seconds <n>     ws-idle's watch [60]
  --slow-seconds <n>     slow-clients' watch [95]
  --fat-clients <n>      concurrent fat-answer requests [4]
  --shutdown-rounds <n>  [3]
  --help`;

const ATTACKS = [
  { name: "ws-flood", run: wsFlood, seconds: 120 },
  { name: "ws-idle", run: wsIdle, seconds: (o) => o.idleSeconds + 30 },
  {
    name: "fat-answer",
    env: { CREATE_POST_MAX_PER_USER: "0" },
    prepare: prepareFatPosts("x"),
    run: fatAnswer,
    seconds: 90,
  },
  {
    name: "fat-answer-c0",
    env: { CREATE_POST_MAX_PER_USER: "0" },
    prepare: prepareFatPosts("\u0001"),
    run: fatAnswer,
    seconds: 90,
  },
  { name: "fanout", prepare: prepareFanout, run: fanout, seconds: 90 },
  { name: "sessions", run: sessions, seconds: 120 },
  { name: "heavy-author", prepare: prepareHeavyAuthor, run: heavyAuthor, seconds: 60 },
  { name: "nested-body", run: nestedBody, seconds: 60 },
  { name: "throttled-logins", prepare: prepareThrottled, run: throttledLogins, seconds: 40 },
  { name: "slow-clients", run: slowClients, seconds: (o) => o.slowSeconds + 40 },
  { name: "shutdown", run: shutdown, expectsExit: true, seconds: 150 },
];

function parseArgs(argv) {
  const options = {
    server: root,
    postgres: undefined,
    only: undefined,
    json: undefined,
    sockets: 3000,
    posts: 20_000,
    idleSeconds: 60,
    slowSeconds: 95,
    fatClients: 4,
    shutdownRounds: 3,
    heapEnv: {},
    nodeDefaults: false,
  };
  const numbers = {
    "--sockets": "sockets",
    "--posts": "posts",
    "--idle-seconds": "idleSeconds",
    "--slow-seconds": "slowSeconds",
    "--fat-clients": "fatClients",
    "--shutdown-rounds": "shutdownRounds",
  };
  const fail = (message) => {
    console.error(`${message}\n\n${HELP}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? fail(`${arg} needs a value`);
    if (arg === "--help" || arg === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (arg === "--server") options.server = resolve(value());
    else if (arg === "--postgres") options.postgres = value();
    else if (arg === "--only")
      options.only = value()
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    else if (arg === "--heap") {
      const mb = Number(value());
      if (!Number.isInteger(mb) || mb <= 0) fail("--heap must be a positive integer (MB)");
      // After npm start's flags in NODE_OPTIONS, so it wins over their --max-old-space-size.
      options.heapEnv = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --max-old-space-size=${mb}`.trim() };
    } else if (arg === "--node-defaults") options.nodeDefaults = true;
    else if (arg === "--json") {
      // `--json`, `--json -`: stdout; `--json <file>`: that file.
      const next = argv[i + 1];
      if (next === "-") i++;
      options.json = next && next !== "-" && !next.startsWith("--") ? resolve(argv[++i]) : "-";
    } else if (numbers[arg]) {
      const n = Number(value());
      if (!Number.isInteger(n) || n <= 0) fail(`${arg} must be a positive integer`);
      options[numbers[arg]] = n;
    } else fail(`unknown argument: ${arg}`);
  }
  const unknown = (options.only ?? []).filter((name) => !ATTACKS.some((a) => a.name === name));
  if (unknown.length) fail(`unknown attack: ${unknown.join(", ")}`);
  options.main = join(options.server, "dist/bundle/main.js");
  if (!existsSync(options.main)) fail(`${options.main} does not exist: build that checkout first (npm run build)`);
  return options;
}

const log = (message) => process.stderr.write(`${message}\n`);
const round = (n) => (n === null || n === undefined ? "-" : n >= 100 ? n.toFixed(0) : n.toFixed(1));

async function runAttack(attack, options, checkout) {
  const start = () =>
    startServer({
      main: options.main,
      postgresUrl: options.postgres,
      env: { ...attack.env, ...options.heapEnv },
      checkout,
    });
  const row = { attack: attack.name, alive: null };
  const began = performance.now();
  let server;
  try {
    server = await start();
    const bystander = await register(server, "bystander");
    const ctx = { server, options, startServer: start, stopServer };
    if (attack.prepare) await attack.prepare(ctx);
    const sampler = startSampler(server, bystander);
    ctx.sampler = sampler;
    // The first second warms the bystander's connections and the server's code paths up.
    await sleep(1000);
    sampler.phase("idle");
    await sleep(3000);
    sampler.phase("during");
    const limitSeconds = typeof attack.seconds === "function" ? attack.seconds(options) : attack.seconds;
    const running = attack.run(ctx);
    running.catch(() => {});
    const outcome = await Promise.race([
      running,
      ...(attack.expectsExit
        ? []
        : [server.exited.then(() => sleep(3000)).then(() => ({ got: "(cut short: the server died)" }))]),
      sleep(limitSeconds * 1000).then(() => ({
        got: `(cut short after ${limitSeconds} s)${ctx.partial ? ` ${ctx.partial()}` : ""}`,
      })),
    ]);
    sampler.phase("after");
    await sleep(1000);
    const phases = await sampler.stop();
    const all = Object.values(phases);
    const peak = (key) => Math.max(0, ...all.map((p) => p[key] ?? 0));
    Object.assign(row, {
      alive: attack.expectsExit
        ? (outcome.exit ?? describeExit(server))
        : server.alive()
          ? "yes"
          : `died: ${describeExit(server)}`,
      peakRssMb: Math.max(peak("peakHwmMb"), peak("peakRssMb")),
      peakHeapMb: peak("peakHeapMb"),
      bystander: { idle: phases.idle, during: phases.during, after: phases.after },
      got: outcome.got,
      details: outcome.details,
    });
  } catch (error) {
    row.alive = server ? (server.alive() ? "yes" : `died: ${describeExit(server)}`) : "did not start";
    row.error = error.message.slice(0, 2000);
    row.got = `(bench error: ${error.message.split("\n")[0]})`;
  } finally {
    if (server) await stopServer(server).catch((error) => log(`stopping: ${error.message}`));
  }
  row.seconds = Math.round((performance.now() - began) / 1000);
  return row;
}

// The heap is read from the metrics listener, on the server's own event loop: a process that runs
// out of heap while its loop is busy building an answer is last seen below the cap.
// The same loop can be too busy to answer for the whole attack: the table says how often it did.
const heap = (r) => {
  const during = r.bystander?.during;
  const seldom =
    during && during.heapAsked > 0 && during.heapAnswered < during.heapAsked / 2
      ? ` (metrics answered ${during.heapAnswered} of ${during.heapAsked})`
      : "";
  return /heap out of memory/.test(r.alive)
    ? `${round(r.peakHeapMb)}, then out of heap${seldom}`
    : `${round(r.peakHeapMb)}${seldom}`;
};

function table(rows) {
  const lines = [
    "| attack | alive after | peak RSS MB | peak heap MB | bystander p50/p99 ms, idle → during | bystander failures, idle → during | attacker got |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    const b = r.bystander;
    const latency = b
      ? `${round(b.idle.p50Ms)}/${round(b.idle.p99Ms)} → ${round(b.during.p50Ms)}/${round(b.during.p99Ms)}`
      : "-";
    const failures = b ? `${b.idle.failed} → ${b.during.failed} of ${b.during.ok + b.during.failed}` : "-";
    lines.push(
      `| ${r.attack} | ${r.alive} | ${round(r.peakRssMb)} | ${heap(r)} | ${latency} | ${failures} | ${String(r.got).replaceAll("|", "\\|")} |`,
    );
  }
  return lines.join("\n");
}

const options = parseArgs(process.argv.slice(2));
const loaded = await loadCheckout(options.server, root);
const checkout = options.nodeDefaults ? { ...loaded, startEnv: withoutArenaMax } : loaded;
let commit = "unknown";
try {
  // HEAD, and the last commit that changed what the bundle is built from (bench/ and docs/ are not).
  const git = (...args) => execFileSync("git", ["-C", options.server, ...args], { encoding: "utf8" }).trim();
  const source = git("log", "-1", "--format=%h", "--", "src", "scripts", "package.json", "package-lock.json");
  commit = `${git("log", "-1", "--format=%h %s").slice(0, 72)}; source ${source}`;
} catch {
  // not a git checkout
}
const header = {
  server: options.main,
  commit,
  database: options.postgres ? `postgres (${options.postgres.replace(/\/\/[^@]*@/, "//")})` : "sqlite",
  node: process.version,
  nodeOptions: checkout.startEnv({ NODE_OPTIONS: options.heapEnv.NODE_OPTIONS ?? process.env.NODE_OPTIONS ?? "" })
    .NODE_OPTIONS,
  date: new Date().toISOString(),
};
log(`abuse bench: ${header.server} (${commit}) on ${header.database}, NODE_OPTIONS=${header.nodeOptions}`);
const rows = [];
const began = performance.now();
for (const attack of ATTACKS.filter((a) => !options.only || options.only.includes(a.name))) {
  log(`- ${attack.name} …`);
  const row = await runAttack(attack, options, checkout);
  log(
    `  ${row.alive}, peak RSS ${round(row.peakRssMb)} MB, heap ${round(row.peakHeapMb)} MB, ${row.seconds} s: ${row.got}`,
  );
  if (row.error) log(`  error: ${row.error}`);
  rows.push(row);
}
const result = {
  ...header,
  seconds: Math.round((performance.now() - began) / 1000),
  options: { ...options, main: undefined },
  rows,
};
if (options.json && options.json !== "-") writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
if (options.json === "-") console.log(JSON.stringify(result, null, 2));
else {
  console.log(
    `\n${header.server} (${commit}), ${header.database}, node ${header.node}, NODE_OPTIONS=${header.nodeOptions}, ${header.date}, ${result.seconds} s\n`,
  );
  console.log(table(rows));
}
process.exit(0);
