// `npm run bench`: this server against its peers, side by side, on loopback.
//
// Starts this server in production mode (built dist/, SQLite in a temporary directory) and each
// peer in bench/peers/ as a separate process, drives them with the same autocannon load in
// interleaved rounds (so that drift of the machine hits every stack alike), then prints one table,
// the goals of issue 5 with PASS/FAIL, and writes bench/results/latest.json and latest.svg.
//
// It is a measurement, not a test: it exits 0 when goals fail, and non-zero only when a stack
// could not be started or set up. `node bench/run.mjs --help` lists the settings.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

import autocannon from "autocannon";
import jwt from "jsonwebtoken";

import { renderChart } from "./lib/chart.mjs";
import { steadyLoad } from "./lib/steady-load.mjs";
import {
  childEnv,
  freePort,
  residentMegabytes,
  serverEnv,
  startProcess,
  stopProcess,
  waitForGraphql,
  waitForReadyLine,
  waitUntilQuiet,
} from "./lib/processes.mjs";
import { AUDIENCE, ISSUER, USER as PEER_USER } from "./peers/shared.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: npm run bench  (or: node bench/run.mjs [--dry-run] [--help])

Benchmarks this server (production mode, SQLite) against bare node:http, Mercurius + @fastify/jwt,
GraphQL Yoga + @graphql-yoga/plugin-jwt and the naive Apollo standalone recipe (jsonwebtoken with a
string secret), all on 127.0.0.1, with autocannon in interleaved rounds. Prints a table and the
goals of issue 5; writes bench/results/latest.json and bench/results/latest.svg.

  --dry-run   start every stack, check one answer per scenario, measure startup, stop; no load,
              no files written (a few seconds)
  --help      this text

Environment (defaults in brackets):
  BENCH_DURATION     seconds of load per run [4]
  BENCH_ROUNDS       interleaved rounds; the table shows medians [5]
  BENCH_CONNECTIONS  concurrent connections for the throughput scenarios [64]
  BENCH_WARMUP       seconds of unrecorded load per stack and scenario before round 1 [2]
  BENCH_BURST_RATE   steady requests/s of \`me\` in the login-burst scenario, idle and during it [500]
  BENCH_SCENARIOS    only these scenarios, comma-separated (typename, me, me-posts, login, burst);
                     results are then printed but bench/results/ is left as it is [all]
  BENCH_STARTS       how many times \`npm start\` is timed, on a fresh data directory each [3]

Exit status: 0 when the run completed (whether or not the goals hold), 1 when a stack failed to
start or to answer correctly, 2 on a bad command line.`;

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(HELP);
  process.exit(0);
}
const unknown = args.filter((a) => a !== "--dry-run");
if (unknown.length > 0) {
  console.error(`unknown argument: ${unknown.join(" ")}\n\n${HELP}`);
  process.exit(2);
}
const dryRun = args.includes("--dry-run");

function setting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const scenarioFilter = (process.env.BENCH_SCENARIOS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);

const settings = {
  durationSeconds: setting("BENCH_DURATION", 4),
  rounds: Math.round(setting("BENCH_ROUNDS", 5)),
  connections: Math.round(setting("BENCH_CONNECTIONS", 64)),
  warmupSeconds: setting("BENCH_WARMUP", 2),
  burstRate: setting("BENCH_BURST_RATE", 500),
  burstLogins: 20,
  loginUsers: 8,
  endedSessions: 32,
  postsPerUser: 5,
  npmStarts: Math.round(setting("BENCH_STARTS", 3)),
};

const GOALS = {
  authOverhead: 0.95,
  versusMercurius: 1.0,
  rssMegabytes: 150,
  burstP99Factor: 3,
  startupMs: 1000,
};

const PASSWORD = "bench password 1234";
const ME = "{ me { id } }";
const ME_POSTS = "{ me { id username posts { id } } }";
const TYPENAME = "{ __typename }";
const LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }";

const log = (message) => process.stderr.write(`${message}\n`);

// ---------------------------------------------------------------------------------------------
// Stacks

/** The stacks, in table order; `script` is a peer in bench/peers/, `this` is this server. */
const STACKS = [
  { id: "this", label: "this server (Apollo 5 on Fastify, type-graphql, KeyObject)" },
  { id: "mercurius", label: "Mercurius (graphql-jit) + @fastify/jwt", script: "mercurius.mjs" },
  {
    id: "naive-apollo",
    label: "Apollo standalone + type-graphql + jsonwebtoken, string secret",
    script: "naive-apollo.mjs",
  },
  { id: "yoga", label: "GraphQL Yoga + @graphql-yoga/plugin-jwt", script: "yoga.mjs" },
  { id: "bare-http", label: "bare node:http, fixed JSON body", script: "bare-http.mjs" },
];

const secret = randomBytes(48).toString("base64url");

const temporaryDirs = [];
function temporaryDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirs.push(dir);
  return dir;
}
process.on("exit", () => {
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
});

async function startStack(stack) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const since = performance.now();
  let handle;
  if (stack.id === "this") {
    const dataDir = temporaryDir("gta-bench-");
    // What `npm start` runs. cwd is the data directory, so a developer's .env in the repository
    // does not leak in.
    handle = startProcess(process.execPath, [join(root, "dist/bundle/main.js")], {
      env: await serverEnv({ port, dataDir, secret }),
      cwd: dataDir,
    });
  } else {
    handle = startProcess(process.execPath, [join(root, "bench/peers", stack.script), String(port)], {
      env: await childEnv({ PORT: String(port), BENCH_JWT_SECRET: secret }),
      cwd: root,
    });
    await waitForReadyLine(handle);
  }
  const startupMs = await waitForGraphql(handle, url, since);
  return { ...stack, handle, pid: handle.process.pid, url, startupMs };
}

/** Time from `npm start` (prestart's build check included) to the first 200 from /graphql. */
async function timeNpmStart() {
  const port = await freePort();
  const dataDir = temporaryDir("gta-bench-start-");
  const npm = process.env.npm_execpath;
  const [command, commandArgs] = npm && npm.endsWith(".js") ? [process.execPath, [npm, "start"]] : ["npm", ["start"]];
  const since = performance.now();
  const handle = startProcess(command, commandArgs, {
    env: await serverEnv({ port, dataDir, secret }),
    cwd: root,
    group: true,
  });
  try {
    return await waitForGraphql(handle, `http://127.0.0.1:${port}/graphql`, since);
  } finally {
    await stopProcess(handle);
  }
}

// ---------------------------------------------------------------------------------------------
// GraphQL over fetch, for setting up and checking

async function graphql(url, query, variables, token) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (response.status !== 200 || body.errors) {
    throw new Error(`${query.slice(0, 60)} answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return body.data;
}

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/**
 * Registers the login users, gives the first one posts, and ends some sessions so that the
 * revocation list the context consults on every request is not empty.
 */
async function seedThisServer(url) {
  const usernames = Array.from({ length: settings.loginUsers }, (_, i) => `bench-user-${i + 1}`);
  const tokens = await inBatches(usernames, 2, async (username) => {
    const data = await graphql(url, "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }", {
      input: { username, password: PASSWORD },
    });
    return data.register.accessToken;
  });
  for (let i = 0; i < settings.postsPerUser; i++) {
    await graphql(
      url,
      "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
      {
        input: { title: `Post ${i + 1}`, body: "A post for the benchmark's me + posts query." },
      },
      tokens[0],
    );
  }
  const ended = Array.from({ length: settings.endedSessions }, (_, i) => usernames[i % usernames.length]);
  await inBatches(ended, 2, async (username) => {
    const token = await loginToken(url, username);
    await graphql(url, "mutation { logout }", undefined, token);
  });
  return usernames;
}

async function loginToken(url, username) {
  return (await graphql(url, LOGIN, { input: { username, password: PASSWORD } })).login.accessToken;
}

function peerToken() {
  return jwt.sign({ sub: PEER_USER.id }, secret, {
    algorithm: "HS256",
    issuer: ISSUER,
    audience: AUDIENCE,
    expiresIn: "2h",
  });
}

// ---------------------------------------------------------------------------------------------
// Load

const isData = (body) => body.startsWith('{"data":{') && !body.includes('"errors"');
const checks = {
  typename: (body) => isData(body) && body.includes('"__typename":"Query"'),
  me: (body) => isData(body) && body.includes('"me":{"id":"'),
  mePosts: (body) => isData(body) && body.includes('"posts":[{"id":"'),
  login: (body) => isData(body) && body.includes('"accessToken":"'),
};

function graphqlBody(query, variables) {
  return JSON.stringify(variables ? { query, variables } : { query });
}

/** Starts an autocannon run; `done` resolves with its result, `stop()` ends it early. */
function startLoad({
  url,
  query,
  token,
  requests,
  connections = settings.connections,
  duration,
  overallRate,
  timeout = 10,
  verifyBody,
}) {
  let instance;
  const done = new Promise((resolve, reject) => {
    instance = autocannon(
      {
        url,
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: query ? graphqlBody(query) : undefined,
        requests,
        connections,
        duration,
        overallRate,
        timeout,
        verifyBody,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
  return { done, stop: () => instance.stop() };
}

function summarise(result) {
  // A failed request: a socket error or timeout, or a response that was not 2xx or whose body was
  // not the expected answer (a non-2xx body fails the check too, so the larger of the two counts).
  const failed = result.errors + Math.max(result.non2xx, result.mismatches);
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: failed,
    requests: result.requests.total,
  };
}

function loginRequests(url, usernames) {
  return usernames.map((username) => ({
    method: "POST",
    path: new URL(url).pathname,
    headers: { "content-type": "application/json" },
    body: graphqlBody(LOGIN, { input: { username, password: PASSWORD } }),
  }));
}

/** The scenarios, in table order; `stacks` limits one to the stacks it applies to. */
const ALL_SCENARIOS = [
  {
    id: "typename",
    label: "{ __typename }, no token",
    run: (s, d) =>
      startLoad({ url: s.url, query: TYPENAME, duration: d, verifyBody: checks.typename }).done.then(summarise),
  },
  {
    id: "me",
    label: "{ me { id } }, Bearer token",
    run: (s, d) =>
      startLoad({ url: s.url, query: ME, token: s.token, duration: d, verifyBody: checks.me }).done.then(summarise),
  },
  {
    id: "me-posts",
    label: "{ me { id username posts { id } } } (database)",
    stacks: ["this"],
    run: (s, d) =>
      startLoad({ url: s.url, query: ME_POSTS, token: s.token, duration: d, verifyBody: checks.mePosts }).done.then(
        summarise,
      ),
  },
  {
    id: "login",
    label: `login (argon2id), ${settings.loginUsers} users`,
    stacks: ["this"],
    run: (s, d) =>
      startLoad({
        url: s.url,
        requests: loginRequests(s.url, s.usernames),
        duration: d,
        timeout: 60,
        verifyBody: checks.login,
      }).done.then(summarise),
  },
  {
    id: "burst",
    label: `me at ${settings.burstRate}/s: idle, then during ${settings.burstLogins} concurrent logins`,
    stacks: ["this"],
    run: runBurst,
  },
];

/**
 * `me` at a steady rate below capacity (so latency is not just queueing), first with nothing else
 * going on, then while `burstLogins` connections log in back to back. See lib/steady-load.mjs for
 * why this is not autocannon's rate limit.
 */
async function runBurst(stack, duration) {
  const me = () =>
    steadyLoad({
      url: stack.url,
      body: graphqlBody(ME),
      headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
      rate: settings.burstRate,
      durationSeconds: duration,
      connections: settings.connections,
      verifyBody: checks.me,
    });
  const idle = await me();
  await waitUntilQuiet(stack.pid);
  const logins = startLoad({
    url: stack.url,
    requests: loginRequests(stack.url, stack.usernames),
    connections: settings.burstLogins,
    duration: duration + 30,
    timeout: 60,
    verifyBody: checks.login,
  });
  await sleep(1000); // every login connection busy before `me` is measured
  const during = await me();
  logins.stop();
  return { idle, during, logins: summarise(await logins.done) };
}

const SCENARIOS =
  scenarioFilter.length === 0 ? ALL_SCENARIOS : ALL_SCENARIOS.filter((s) => scenarioFilter.includes(s.id));
const unknownScenarios = scenarioFilter.filter((id) => !ALL_SCENARIOS.some((s) => s.id === id));
if (unknownScenarios.length > 0) {
  console.error(
    `BENCH_SCENARIOS: unknown scenario ${unknownScenarios.join(", ")}; known: ${ALL_SCENARIOS.map((s) => s.id).join(", ")}`,
  );
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (xs) => {
  const sorted = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** One table row per stack and (sub-)scenario: medians over rounds, errors summed, RSS the largest. */
function buildRows(samples) {
  const rows = [];
  for (const scenario of SCENARIOS) {
    for (const stack of STACKS) {
      const runs = samples.filter((s) => s.scenario === scenario.id && s.stack === stack.id);
      if (runs.length === 0) continue;
      const parts =
        scenario.id === "burst"
          ? [
              ["burst-idle", `me at ${settings.burstRate}/s, idle`, (r) => r.result.idle],
              [
                "burst-during",
                `me at ${settings.burstRate}/s, ${settings.burstLogins} logins running`,
                (r) => r.result.during,
              ],
              ["burst-logins", `the ${settings.burstLogins} concurrent logins`, (r) => r.result.logins],
            ]
          : [[scenario.id, scenario.label, (r) => r.result]];
      for (const [id, label, pick] of parts) {
        const picked = runs.map(pick);
        rows.push({
          stack: stack.id,
          scenario: id,
          label,
          rps: median(picked.map((p) => p.rps)),
          p50: median(picked.map((p) => p.p50)),
          p99: median(picked.map((p) => p.p99)),
          errors: picked.reduce((sum, p) => sum + p.errors, 0),
          requests: picked.reduce((sum, p) => sum + p.requests, 0),
          rssMb: Math.max(...runs.map((r) => r.rssMb ?? 0)) || null,
          rounds: picked.map((p, i) => ({ ...p, rssMb: runs[i].rssMb })),
        });
      }
    }
  }
  return rows;
}

function evaluateGoals(rows, startup) {
  const row = (stack, scenario) => rows.find((r) => r.stack === stack && r.scenario === scenario);
  const perRound = (a, b, field) => a.rounds.map((r, i) => r[field] / b.rounds[i][field]);
  const thisMe = row("this", "me");
  const thisTypename = row("this", "typename");
  const mercuriusMe = row("mercurius", "me");
  const idle = row("this", "burst-idle");
  const during = row("this", "burst-during");
  const thisRows = rows.filter((r) => r.stack === "this");
  const goals = [];
  if (thisMe && thisTypename) {
    const value = thisMe.rps / thisTypename.rps;
    goals.push({
      id: "auth-overhead",
      label: "authenticated { me { id } } / unauthenticated { __typename }, this server",
      value,
      unit: "ratio",
      threshold: `>= ${GOALS.authOverhead}`,
      pass: value >= GOALS.authOverhead,
      perRound: perRound(thisMe, thisTypename, "rps"),
    });
  }
  if (thisMe && mercuriusMe) {
    const value = thisMe.rps / mercuriusMe.rps;
    goals.push({
      id: "versus-mercurius",
      label: "authenticated { me { id } }: this server / Mercurius + @fastify/jwt",
      value,
      unit: "ratio",
      threshold: `>= ${GOALS.versusMercurius}`,
      pass: value >= GOALS.versusMercurius,
      perRound: perRound(thisMe, mercuriusMe, "rps"),
    });
  }
  if (thisRows.length > 0) {
    const failed = thisRows.reduce((sum, r) => sum + r.errors, 0);
    const requests = thisRows.reduce((sum, r) => sum + r.requests, 0);
    goals.push({
      id: "no-failures",
      label: `failed requests, this server, every scenario (${requests} requests)`,
      value: failed,
      unit: "requests",
      threshold: "= 0",
      pass: failed === 0,
    });
    const rss = Math.max(...thisRows.map((r) => r.rssMb ?? 0));
    goals.push({
      id: "rss",
      label: "resident memory after load, this server on SQLite (largest reading)",
      value: rss,
      unit: "MB",
      threshold: `<= ${GOALS.rssMegabytes}`,
      pass: rss > 0 && rss <= GOALS.rssMegabytes,
    });
  }
  if (idle && during) {
    const value = during.p99 / idle.p99;
    goals.push({
      id: "login-burst",
      label: `me p99 during ${settings.burstLogins} concurrent logins / idle p99 (${during.p99.toFixed(1)} / ${idle.p99.toFixed(1)} ms)`,
      value,
      unit: "ratio",
      threshold: `<= ${GOALS.burstP99Factor}`,
      pass: value <= GOALS.burstP99Factor,
      perRound: perRound(during, idle, "p99"),
    });
  }
  if (startup.npmStartMs.length > 0) {
    const value = median(startup.npmStartMs);
    goals.push({
      id: "startup",
      label: `npm start to the first /graphql answer, SQLite, built (median of ${startup.npmStartMs.length})`,
      value,
      unit: "ms",
      threshold: `< ${GOALS.startupMs}`,
      pass: value < GOALS.startupMs,
    });
  }
  return goals;
}

function formatGoalValue(goal) {
  if (goal.unit === "ratio") return goal.value.toFixed(2);
  if (goal.unit === "MB") return `${goal.value.toFixed(0)} MB`;
  if (goal.unit === "ms") return `${goal.value.toFixed(0)} ms`;
  return String(goal.value);
}

function printTable(rows, goals, startup, machine) {
  const header = ["stack", "scenario", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB"];
  const lines = rows.map((r) => [
    r.stack,
    r.label,
    r.rps.toFixed(0),
    r.p50.toFixed(1),
    r.p99.toFixed(1),
    String(r.errors),
    r.rssMb === null ? "-" : r.rssMb.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [];
  out.push(format(header));
  out.push(widths.map((w) => "-".repeat(w)).join("  "));
  let previous;
  for (let i = 0; i < rows.length; i++) {
    const group = rows[i].scenario.startsWith("burst") ? "burst" : rows[i].scenario;
    if (previous !== undefined && group !== previous) out.push("");
    previous = group;
    out.push(format(lines[i]));
  }
  out.push("");
  out.push(
    `startup to first /graphql answer: npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")} ms; ` +
      `node directly: ${Object.entries(startup.direct)
        .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
        .join(", ")} ms`,
  );
  out.push(
    `machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; load average (1, 5, 15 min) ${machine.loadAverageAtStart.join(" ")} at start, ${machine.loadAverageAtEnd.join(" ")} at end`,
  );
  out.push(
    `RSS right after start (MB): ${Object.entries(startup.rssAtStartMb)
      .map(([s, mb]) => `${s} ${mb === null ? "-" : mb.toFixed(0)}`)
      .join(", ")}`,
  );
  out.push("");
  out.push("goals:");
  for (const goal of goals) {
    const rounds = goal.perRound ? ` (rounds: ${goal.perRound.map((v) => v.toFixed(2)).join(", ")})` : "";
    out.push(
      `  ${goal.pass ? "PASS" : "FAIL"}  ${goal.label}: ${formatGoalValue(goal)}, goal ${goal.threshold}${rounds}`,
    );
  }
  const me = (stack) => rows.find((r) => r.stack === stack && r.scenario === "me");
  if (me("this")) {
    out.push("");
    out.push("authenticated { me { id } }, relative to this server:");
    for (const stack of STACKS.filter((s) => s.id !== "this" && me(s.id))) {
      out.push(`  ${stack.id.padEnd(13)} ${(me(stack.id).rps / me("this").rps).toFixed(2)}`);
    }
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  if (!existsSync(join(root, "dist/bundle/main.js"))) {
    console.error("dist/ is missing: run `npm run bench` (it builds first) or `npm run build`.");
    process.exit(1);
  }
  if (existsSync(join(root, ".env"))) {
    log("note: the repository has a .env file; `npm start` reads it, so the startup timing includes its settings");
  }
  const startedAt = new Date();
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    // Other work on the machine skews every stack; interleaving spreads it, this records it.
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
  log(
    `bench: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, load average ${machine.loadAverageAtStart.join(" ")}; ${dryRun ? "dry run" : `${settings.rounds} rounds × ${settings.durationSeconds} s, ${settings.connections} connections`}`,
  );

  // Startup first, on a quiet machine.
  const startup = { npmStartMs: [], direct: {}, rssAtStartMb: {} };
  for (let i = 0; i < (dryRun ? 1 : settings.npmStarts); i++) {
    try {
      startup.npmStartMs.push(await timeNpmStart());
    } catch (error) {
      console.error(`npm start failed:\n${error.message}`);
      process.exit(1);
    }
  }
  log(`npm start → first answer: ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")} ms`);

  const stacks = [];
  let self;
  try {
    for (const stack of STACKS) {
      const running = await startStack(stack);
      stacks.push(running);
      startup.direct[stack.id] = running.startupMs;
      startup.rssAtStartMb[stack.id] = residentMegabytes(running.pid);
      log(
        `started ${stack.id} (pid ${running.pid}) in ${running.startupMs.toFixed(0)} ms, RSS ${startup.rssAtStartMb[stack.id]?.toFixed(0)} MB`,
      );
    }
    self = stacks.find((s) => s.id === "this");
    self.usernames = await seedThisServer(self.url);
    self.token = await loginToken(self.url, self.usernames[0]);
    for (const peer of stacks.filter((s) => s.id !== "this")) peer.token = peerToken();

    // One checked answer per stack and scenario, so a broken stack fails here, not as a fast row.
    for (const scenario of SCENARIOS) {
      for (const stack of stacks.filter((s) => !scenario.stacks || scenario.stacks.includes(s.id))) {
        const query = { typename: TYPENAME, me: ME, "me-posts": ME_POSTS, burst: ME }[scenario.id];
        const check = { typename: checks.typename, me: checks.me, "me-posts": checks.mePosts, burst: checks.me }[
          scenario.id
        ];
        if (!query) continue;
        const response = await fetch(stack.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(query === TYPENAME ? {} : { authorization: `Bearer ${stack.token}` }),
          },
          body: graphqlBody(query),
        });
        const body = await response.text();
        if (response.status !== 200 || !check(body))
          throw new Error(`${stack.id} answered ${scenario.id} with ${response.status}: ${body.slice(0, 300)}`);
      }
    }
    await loginToken(self.url, self.usernames[1]);
  } catch (error) {
    console.error(`a stack failed to start or answer: ${error.message}`);
    await Promise.all(stacks.map((s) => stopProcess(s.handle)));
    process.exit(1);
  }

  if (dryRun) {
    log("dry run: every stack started and answered every scenario correctly");
    console.log(
      `startup (ms): npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")}; ` +
        Object.entries(startup.direct)
          .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
          .join(", "),
    );
    await Promise.all(stacks.map((s) => stopProcess(s.handle)));
    return;
  }

  const stacksFor = (scenario) => stacks.filter((s) => !scenario.stacks || scenario.stacks.includes(s.id));

  log(`warm-up: ${settings.warmupSeconds} s per stack and scenario`);
  for (const scenario of SCENARIOS.filter((s) => ["typename", "me", "me-posts"].includes(s.id))) {
    for (const stack of stacksFor(scenario)) {
      await scenario.run(stack, settings.warmupSeconds);
      await waitUntilQuiet(stack.pid);
    }
  }

  const samples = [];
  for (let round = 0; round < settings.rounds; round++) {
    // A fresh token each round: the run may outlast the 15-minute access-token lifetime.
    self.token = await loginToken(self.url, self.usernames[0]);
    for (const scenario of SCENARIOS) {
      const order = stacksFor(scenario);
      // Rotate the order every round, so no stack always runs first (or right after logins).
      const rotated = order.map((_, i) => order[(i + round) % order.length]);
      for (const stack of rotated) {
        const result = await scenario.run(stack, settings.durationSeconds);
        const rssMb = residentMegabytes(stack.pid);
        samples.push({ round, scenario: scenario.id, stack: stack.id, result, rssMb });
        const shown =
          scenario.id === "burst"
            ? `p99 idle ${result.idle.p99.toFixed(1)} ms, during logins ${result.during.p99.toFixed(1)} ms, logins ${result.logins.rps.toFixed(1)}/s`
            : `${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors} errors`;
        log(
          `round ${round + 1}/${settings.rounds} ${scenario.id.padEnd(8)} ${stack.id.padEnd(12)} ${shown}, RSS ${rssMb?.toFixed(0)} MB`,
        );
        await waitUntilQuiet(stack.pid);
      }
    }
  }

  await Promise.all(stacks.map((s) => stopProcess(s.handle)));
  machine.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));

  const rows = buildRows(samples);
  const goals = evaluateGoals(rows, startup);
  const table = printTable(rows, goals, startup, machine);
  console.log(table);

  const report = {
    command: "npm run bench",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    loadGenerator: `autocannon ${JSON.parse(readFileSync(join(root, "node_modules/autocannon/package.json"), "utf8")).version}, in the bench process, on the same machine`,
    settings,
    stacks: STACKS.map(({ id, label }) => ({ id, label })),
    scenarios: SCENARIOS.map(({ id, label, stacks }) => ({ id, label, stacks: stacks ?? STACKS.map((s) => s.id) })),
    startup,
    rows,
    goals,
    table,
  };
  if (SCENARIOS.length < ALL_SCENARIOS.length) {
    log("some scenarios were left out (BENCH_SCENARIOS): bench/results/ not updated");
    return;
  }
  const out = join(root, "bench/results");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "latest.svg"), renderChart(report));
  log("wrote bench/results/latest.json and bench/results/latest.svg");
}

await main();
