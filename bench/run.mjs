// `npm run bench`: this server against its peers, side by side, on loopback.
//
// Starts this server in production mode (built dist/, SQLite in a temporary directory) twice: as
// `npm start` runs it (its memory flags, scripts/memory-defaults.mjs) and with Node's default flags
// (`this-default`, only in the scenarios that compare memory and throughput); and each peer in
// bench/peers/ as a separate process. It drives them with the same autocannon load in interleaved
// rounds (so that drift of the machine hits every stack alike), then overloads this server with
// three times the connections, runs bench/guard-cost.mjs (the guard's cost without HTTP) once the
// stacks are stopped, prints one table and the goals of issues 5 and 14 with PASS/FAIL, and writes
// bench/results/latest.json and latest.svg.
//
// It is a measurement, not a test: it exits 0 when goals fail, and non-zero only when a stack
// could not be started or answered wrongly. `node bench/run.mjs --help` lists the settings.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import autocannon from "autocannon";
import jwt from "jsonwebtoken";

import { formatGoalValue, renderChart } from "./lib/chart.mjs";
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
import { startEnv } from "../scripts/memory-defaults.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: npm run bench  (or: node bench/run.mjs [--dry-run] [--help])

Benchmarks this server (production mode, SQLite) against bare node:http, Mercurius + @fastify/jwt,
GraphQL Yoga + @graphql-yoga/plugin-jwt and the naive Apollo standalone recipe (jsonwebtoken with a
string secret), all on 127.0.0.1, with autocannon in interleaved rounds. This server runs twice:
"this" with npm start's memory flags (scripts/memory-defaults.mjs) and "this-default" with Node's
default flags and no MALLOC_ARENA_MAX, the latter only in typename, typename-token and me. After the
rounds, "this" gets me at 3 × BENCH_CONNECTIONS for one BENCH_DURATION (overload), and once the
stacks are stopped bench/guard-cost.mjs measures the guard without HTTP. Prints a table and the
goals of issues 5 and 14; writes bench/results/latest.json and bench/results/latest.svg.

  --dry-run   start every stack, check one answer per scenario, measure startup, run a tiny
              guard-cost check, stop; no load, no files written (a few seconds)
  --help      this text

Scenarios: typename ({ __typename }, no token), typename-token (the same with a valid Bearer
token), me ({ me { id } }), me-posts (reads the database), login (argon2id), burst (me at a steady
rate, idle and during concurrent logins), and the phases overload and guard.

Environment (defaults in brackets):
  BENCH_DURATION     seconds of load per run [4]
  BENCH_ROUNDS       interleaved rounds; the table shows medians and the min-max range [5]
  BENCH_CONNECTIONS  concurrent connections for the throughput scenarios (overload: 3 ×) [64]
  BENCH_WARMUP       seconds of unrecorded load per stack and scenario before round 1 [2]
  BENCH_BURST_RATE   steady requests/s of \`me\` in the login-burst scenario, idle and during it [500]
  BENCH_SCENARIOS    only these scenarios and phases, comma-separated (typename, typename-token,
                     me, me-posts, login, burst, overload, guard); results are then printed but
                     bench/results/ is left as it is [all]
  BENCH_STARTS       how many times \`npm start\` is timed, on a fresh data directory each [3]

Exit status: 0 when the run completed (whether or not the goals hold), 1 when a stack failed to
start or to answer correctly (or guard-cost.mjs failed its checks), 2 on a bad command line.`;

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
  versusMercurius: 0.6,
  tokenOverhead: 0.97,
  guardMicroseconds: 3,
  rssMegabytes: 150,
  burstP99Factor: 3,
  startupMs: 1000,
  memoryFlagsThroughput: 0.95,
  overloadFactor: 3,
};

const PASSWORD = "bench password 1234";
const ME = "{ me { id } }";
const ME_POSTS = "{ me { id username posts { id } } }";
const TYPENAME = "{ __typename }";
const LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }";

const log = (message) => process.stderr.write(`${message}\n`);

// ---------------------------------------------------------------------------------------------
// Stacks

/**
 * The stacks, in table order; `script` is a peer in bench/peers/, `server` marks this server (with
 * npm start's memory flags or Node's defaults), `scenarios` limits a stack to those scenarios.
 */
const STACKS = [
  { id: "this", label: "this server, npm start's memory flags", server: "npm-start-flags" },
  {
    id: "this-default",
    label: "this server, Node's default flags",
    server: "node-defaults",
    scenarios: ["typename", "typename-token", "me"],
  },
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

async function startStack(stackToStart) {
  let stack = stackToStart;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const since = performance.now();
  let handle;
  if (stack.server) {
    const dataDir = temporaryDir("gta-bench-");
    // What `npm start` runs: its memory flags in NODE_OPTIONS and MALLOC_ARENA_MAX (startEnv), or
    // for this-default the same without them (the caller's own NODE_OPTIONS kept in both). cwd is
    // the data directory, so a developer's .env in the repository does not leak in.
    const env = await serverEnv({ port, dataDir, secret });
    if (stack.server === "npm-start-flags") Object.assign(env, startEnv(env));
    else delete env.MALLOC_ARENA_MAX;
    handle = startProcess(process.execPath, [join(root, "dist/bundle/main.js")], { env, cwd: dataDir });
    stack = { ...stack, nodeOptions: env.NODE_OPTIONS ?? "", mallocArenaMax: env.MALLOC_ARENA_MAX ?? null };
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

/**
 * The scenarios, in table order; `stacks` limits one to the stacks it applies to (and a stack's
 * `scenarios` limits it to those); `probe` is the one checked answer asked of every stack before
 * the load (query, check, whether with the token).
 */
const ALL_SCENARIOS = [
  {
    id: "typename",
    label: "{ __typename }, no token",
    probe: { query: TYPENAME, check: checks.typename, token: false },
    run: (s, d) =>
      startLoad({ url: s.url, query: TYPENAME, duration: d, verifyBody: checks.typename }).done.then(summarise),
  },
  {
    // The peers verify the token on every request too (an onRequest hook, a Yoga plugin, Apollo's
    // context); bare-http ignores it.
    id: "typename-token",
    label: "{ __typename }, Bearer token",
    probe: { query: TYPENAME, check: checks.typename, token: true },
    run: (s, d) =>
      startLoad({ url: s.url, query: TYPENAME, token: s.token, duration: d, verifyBody: checks.typename }).done.then(
        summarise,
      ),
  },
  {
    id: "me",
    label: "{ me { id } }, Bearer token",
    probe: { query: ME, check: checks.me, token: true },
    run: (s, d) =>
      startLoad({ url: s.url, query: ME, token: s.token, duration: d, verifyBody: checks.me }).done.then(summarise),
  },
  {
    id: "me-posts",
    label: "{ me { id username posts { id } } } (database)",
    stacks: ["this"],
    probe: { query: ME_POSTS, check: checks.mePosts, token: true },
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
    probe: { query: ME, check: checks.me, token: true },
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

/** What runs after the rounds: `me` at 3 × the connections on this server, and guard-cost.mjs. */
const PHASES = ["overload", "guard"];

const SCENARIOS =
  scenarioFilter.length === 0 ? ALL_SCENARIOS : ALL_SCENARIOS.filter((s) => scenarioFilter.includes(s.id));
const runPhase = (id) => scenarioFilter.length === 0 || scenarioFilter.includes(id);
const knownIds = [...ALL_SCENARIOS.map((s) => s.id), ...PHASES];
const unknownScenarios = scenarioFilter.filter((id) => !knownIds.includes(id));
if (unknownScenarios.length > 0) {
  console.error(`BENCH_SCENARIOS: unknown scenario ${unknownScenarios.join(", ")}; known: ${knownIds.join(", ")}`);
  process.exit(2);
}
const completeRun = scenarioFilter.length === 0;

/** The stacks a scenario runs on, of `stacks` (running or not), in table order. */
function stacksOf(scenario, stacks) {
  return stacks.filter(
    (s) => (!scenario.stacks || scenario.stacks.includes(s.id)) && (!s.scenarios || s.scenarios.includes(scenario.id)),
  );
}

/**
 * `me` on this server (npm start's flags) at GOALS.overloadFactor × the connections for one
 * duration: failed requests, RSS right after, and whether the process is still running and gives
 * a checked answer afterwards (an out-of-memory crash under the heap cap would end it).
 */
async function runOverload(stack) {
  const connections = settings.connections * GOALS.overloadFactor;
  stack.token = await loginToken(stack.url, stack.usernames[0]);
  log(`overload: me at ${connections} connections for ${settings.durationSeconds} s, this server`);
  const result = summarise(
    await startLoad({
      url: stack.url,
      query: ME,
      token: stack.token,
      connections,
      duration: settings.durationSeconds,
      verifyBody: checks.me,
    }).done,
  );
  const rssMb = residentMegabytes(stack.pid);
  await waitUntilQuiet(stack.pid);
  let answeredAfter = false;
  if (!stack.handle.exited) {
    try {
      const response = await fetch(stack.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
        body: graphqlBody(ME),
        signal: AbortSignal.timeout(10_000),
      });
      answeredAfter = response.status === 200 && checks.me(await response.text());
    } catch {
      answeredAfter = false;
    }
  }
  const overload = {
    connections,
    durationSeconds: settings.durationSeconds,
    result,
    rssMb,
    alive: !stack.handle.exited,
    exitCode: stack.handle.exitCode,
    answeredAfter,
  };
  if (!overload.alive) log(`overload: this server exited (${overload.exitCode}):\n${stack.handle.output.slice(-2000)}`);
  log(
    `overload: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors} failed, RSS ${rssMb?.toFixed(0)} MB, ${overload.alive ? "alive" : "exited"}, ${answeredAfter ? "answers" : "does not answer"}`,
  );
  return overload;
}

const execFileAsync = promisify(execFile);

/** Runs bench/guard-cost.mjs --json as a child process; its report, or `{ error }`. */
async function runGuardCost(extraArgs) {
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [join(root, "bench/guard-cost.mjs"), "--json", ...extraArgs],
      { cwd: root, env: await childEnv(), timeout: 300_000, maxBuffer: 1 << 20 },
    );
    return JSON.parse(stdout.trim().split("\n").at(-1));
  } catch (error) {
    return { error: (error.stderr || error.message || String(error)).trim().split("\n").slice(0, 5).join(" ") };
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const median = (xs) => {
  const sorted = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/**
 * One table row per stack and (sub-)scenario: medians over rounds with the range of req/s, errors
 * summed, RSS the largest reading.
 */
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
          rpsMin: Math.min(...picked.map((p) => p.rps)),
          rpsMax: Math.max(...picked.map((p) => p.rps)),
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

/** The largest RSS reading of a stack after the runs of these scenarios, or null. */
function largestRss(rows, stack, scenarios) {
  const readings = rows.filter((r) => r.stack === stack && scenarios.includes(r.scenario)).map((r) => r.rssMb ?? 0);
  return readings.length > 0 ? Math.max(...readings) || null : null;
}

/** The scenarios both `this` and `this-default` run, so their RSS readings compare. */
const SIDE_BY_SIDE = ["typename", "typename-token", "me"];

function evaluateGoals(rows, startup, { overload, guard }) {
  const row = (stack, scenario) => rows.find((r) => r.stack === stack && r.scenario === scenario);
  const perRound = (a, b, field) => a.rounds.map((r, i) => r[field] / b.rounds[i][field]);
  const ratioGoal = (id, label, a, b, threshold, field = "rps") => ({
    id,
    label,
    value: a[field] / b[field],
    unit: "ratio",
    threshold: `>= ${threshold}`,
    pass: a[field] / b[field] >= threshold,
    perRound: perRound(a, b, field),
  });
  const thisMe = row("this", "me");
  const thisTypename = row("this", "typename");
  const thisTypenameToken = row("this", "typename-token");
  const mercuriusMe = row("mercurius", "me");
  const idle = row("this", "burst-idle");
  const during = row("this", "burst-during");
  const serverRows = rows.filter((r) => r.stack === "this" || r.stack === "this-default");
  const goals = [];
  if (thisMe && mercuriusMe) {
    goals.push(
      ratioGoal(
        "versus-mercurius",
        "authenticated { me { id } }: this server / Mercurius + @fastify/jwt",
        thisMe,
        mercuriusMe,
        GOALS.versusMercurius,
      ),
    );
  }
  if (thisTypenameToken && thisTypename) {
    goals.push(
      ratioGoal(
        "token-overhead",
        "{ __typename } with a valid Bearer token / without, this server",
        thisTypenameToken,
        thisTypename,
        GOALS.tokenOverhead,
      ),
    );
  }
  if (guard) {
    goals.push({
      id: "guard",
      label: guard.error
        ? `guard (@Requires) per guarded field, graphql-js execute without HTTP: did not run (${guard.error})`
        : `guard (@Requires) per guarded field, graphql-js execute without HTTP (${guard.fields} × me { id }, median of ${guard.rounds.length}, rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)} µs)`,
      value: guard.error ? null : guard.usPerGuardedField,
      unit: "µs",
      threshold: `<= ${GOALS.guardMicroseconds}`,
      pass: !guard.error && guard.usPerGuardedField <= GOALS.guardMicroseconds,
    });
  }
  if (serverRows.length > 0) {
    const failed = serverRows.reduce((sum, r) => sum + r.errors, 0);
    const requests = serverRows.reduce((sum, r) => sum + r.requests, 0);
    goals.push({
      id: "no-failures",
      label: `failed requests, this server (both flag sets), every scenario (${requests} requests)`,
      value: failed,
      unit: "requests",
      threshold: "= 0",
      pass: failed === 0,
    });
  }
  const thisRss = largestRss(
    rows,
    "this",
    rows.filter((r) => r.stack === "this").map((r) => r.scenario),
  );
  if (thisRss !== null) {
    goals.push({
      id: "rss",
      label: "resident memory after load, this server with npm start's flags, SQLite (largest reading)",
      value: thisRss,
      unit: "MB",
      threshold: `<= ${GOALS.rssMegabytes}`,
      pass: thisRss <= GOALS.rssMegabytes,
    });
  }
  for (const scenario of ["typename", "me"]) {
    const flags = row("this", scenario);
    const defaults = row("this-default", scenario);
    if (!flags || !defaults) continue;
    goals.push(
      ratioGoal(
        `memory-flags-${scenario}`,
        `${flags.label}: npm start's memory flags / Node's default flags, this server`,
        flags,
        defaults,
        GOALS.memoryFlagsThroughput,
      ),
    );
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
  if (overload) {
    goals.push({
      id: "overload",
      label:
        `no crash under { me { id } } at ${overload.connections} connections (${GOALS.overloadFactor} ×), npm start's flags ` +
        `(${overload.result.errors} failed of ${overload.result.requests}, RSS ${overload.rssMb === null ? "-" : overload.rssMb.toFixed(0)} MB; ` +
        `${overload.answeredAfter ? "answered" : "no answer"} afterwards)`,
      value:
        overload.alive && overload.answeredAfter
          ? "alive"
          : overload.alive
            ? "not answering"
            : `exited (${overload.exitCode})`,
      unit: "state",
      threshold: "alive",
      pass: overload.alive && overload.answeredAfter,
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

/** The side-by-side figures of the two flag sets: RSS over the scenarios both ran, throughput ratios. */
function memoryFlagsComparison(rows, startup) {
  const row = (stack, scenario) => rows.find((r) => r.stack === stack && r.scenario === scenario);
  if (!rows.some((r) => r.stack === "this-default")) return null;
  const throughput = {};
  for (const scenario of SIDE_BY_SIDE) {
    const flags = row("this", scenario);
    const defaults = row("this-default", scenario);
    if (flags && defaults) throughput[scenario] = flags.rps / defaults.rps;
  }
  return {
    scenarios: SIDE_BY_SIDE.filter((id) => row("this-default", id)),
    rssAfterLoadMb: {
      this: largestRss(rows, "this", SIDE_BY_SIDE),
      "this-default": largestRss(rows, "this-default", SIDE_BY_SIDE),
    },
    rssAtStartMb: {
      this: startup.rssAtStartMb.this ?? null,
      "this-default": startup.rssAtStartMb["this-default"] ?? null,
    },
    throughputRatio: throughput,
  };
}

function printTable(report) {
  const { rows, goals, startup, machine, memoryFlags, overload, guard } = report;
  const header = ["stack", "scenario", "req/s", "range", "p50 ms", "p99 ms", "errors", "RSS MB"];
  const lines = rows.map((r) => [
    r.stack,
    r.label,
    r.rps.toFixed(0),
    r.rounds.length > 1 ? `${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}` : "-",
    r.p50.toFixed(1),
    r.p99.toFixed(1),
    String(r.errors),
    r.rssMb === null ? "-" : r.rssMb.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const mb = (value) => (value === null || value === undefined ? "-" : value.toFixed(0));
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
  if (overload) {
    out.push(
      `overload, this (npm start's flags), { me { id } } at ${overload.connections} connections for ${overload.durationSeconds} s: ` +
        `${overload.result.rps.toFixed(0)} req/s, p50 ${overload.result.p50.toFixed(1)} ms, p99 ${overload.result.p99.toFixed(1)} ms, ` +
        `${overload.result.errors} failed of ${overload.result.requests}, RSS ${mb(overload.rssMb)} MB, ` +
        `${overload.alive ? "still running" : `exited (${overload.exitCode})`}, ${overload.answeredAfter ? "answered afterwards" : "did not answer afterwards"}`,
    );
  }
  if (guard && !guard.error) {
    out.push(
      `guard (bench/guard-cost.mjs): ${guard.usPerGuardedField.toFixed(2)} µs per guarded field (rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)}); ` +
        `${guard.fields} × me { id } per execution: ${guard.guardedUsPerExecution.toFixed(0)} µs with the guard, ${guard.unguardedUsPerExecution.toFixed(0)} µs without`,
    );
  }
  if (memoryFlags) {
    out.push(
      `memory flags, this / this-default (same scenarios: ${memoryFlags.scenarios.join(", ")}): ` +
        `RSS after load ${mb(memoryFlags.rssAfterLoadMb.this)} / ${mb(memoryFlags.rssAfterLoadMb["this-default"])} MB (largest reading), ` +
        `at start ${mb(memoryFlags.rssAtStartMb.this)} / ${mb(memoryFlags.rssAtStartMb["this-default"])} MB; req/s ratio ` +
        Object.entries(memoryFlags.throughputRatio)
          .map(([scenario, ratio]) => `${scenario} ${ratio.toFixed(2)}`)
          .join(", "),
    );
  }
  out.push(
    `startup to first /graphql answer: npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")} ms; ` +
      `node directly: ${Object.entries(startup.direct)
        .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
        .join(", ")} ms`,
  );
  out.push(
    `machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; load average (1, 5, 15 min) ${machine.loadAverageAtStart.join(" ")} at start, ${machine.loadAverageAtEnd.join(" ")} at end`,
  );
  if (machine.loadAverageBeforeRound.length > 0) {
    out.push(
      `load average (1 min) before each round: ${machine.loadAverageBeforeRound.map((l) => l[0].toFixed(2)).join(", ")}`,
    );
  }
  out.push(
    `RSS right after start (MB): ${Object.entries(startup.rssAtStartMb)
      .map(([s, value]) => `${s} ${mb(value)}`)
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
  const row = (stack, scenario) => rows.find((r) => r.stack === stack && r.scenario === scenario);
  if (row("this", "me") && row("this", "typename")) {
    const me = row("this", "me");
    const typename = row("this", "typename");
    out.push("");
    out.push(
      `informational: { me { id } } / { __typename } (no token), this server: ${(me.rps / typename.rps).toFixed(2)} ` +
        `(rounds: ${me.rounds.map((r, i) => (r.rps / typename.rounds[i].rps).toFixed(2)).join(", ")})`,
    );
  }
  if (row("this", "me")) {
    out.push("");
    out.push("authenticated { me { id } }, relative to this server (npm start's flags):");
    for (const stack of STACKS.filter((s) => s.id !== "this" && row(s.id, "me"))) {
      out.push(`  ${stack.id.padEnd(13)} ${(row(stack.id, "me").rps / row("this", "me").rps).toFixed(2)}`);
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

  // Only the stacks some chosen scenario runs on; this server always (overload, guard, seeding).
  const needed = STACKS.filter((stack) => stack.id === "this" || SCENARIOS.some((sc) => stacksOf(sc, [stack]).length));
  const stacks = [];
  let self;
  try {
    for (const stack of needed) {
      const running = await startStack(stack);
      stacks.push(running);
      startup.direct[stack.id] = running.startupMs;
      startup.rssAtStartMb[stack.id] = residentMegabytes(running.pid);
      log(
        `started ${stack.id} (pid ${running.pid}) in ${running.startupMs.toFixed(0)} ms, RSS ${startup.rssAtStartMb[stack.id]?.toFixed(0)} MB` +
          (running.server
            ? `, NODE_OPTIONS=${JSON.stringify(running.nodeOptions)}, MALLOC_ARENA_MAX=${running.mallocArenaMax ?? "unset"}`
            : ""),
      );
    }
    self = stacks.find((s) => s.id === "this");
    // Both flag sets of this server get the same users, posts and ended sessions.
    for (const server of stacks.filter((s) => s.server)) {
      server.usernames = await seedThisServer(server.url);
      server.token = await loginToken(server.url, server.usernames[0]);
    }
    for (const peer of stacks.filter((s) => !s.server)) peer.token = peerToken();

    // One checked answer per stack and scenario, so a broken stack fails here, not as a fast row.
    for (const scenario of SCENARIOS) {
      for (const stack of stacksOf(scenario, stacks)) {
        const { query, check, token } = scenario.probe ?? {};
        if (!query) continue;
        const response = await fetch(stack.url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${stack.token}` } : {}) },
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
    await Promise.all(stacks.map((s) => stopProcess(s.handle)));
    if (runPhase("guard")) {
      const guard = await runGuardCost(["--fields", "10", "--executions", "20", "--rounds", "1"]);
      if (guard.error) {
        console.error(`bench/guard-cost.mjs failed: ${guard.error}`);
        process.exit(1);
      }
      log("dry run: guard-cost.mjs ran (10 fields, 20 executions), every result checked");
    }
    log("dry run: every stack started and answered every scenario correctly");
    console.log(
      `startup (ms): npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")}; ` +
        Object.entries(startup.direct)
          .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
          .join(", "),
    );
    return;
  }

  const stacksFor = (scenario) => stacksOf(scenario, stacks);

  log(`warm-up: ${settings.warmupSeconds} s per stack and scenario`);
  for (const scenario of SCENARIOS.filter((s) => ["typename", "typename-token", "me", "me-posts"].includes(s.id))) {
    for (const stack of stacksFor(scenario)) {
      await scenario.run(stack, settings.warmupSeconds);
      await waitUntilQuiet(stack.pid);
    }
  }

  const samples = [];
  machine.loadAverageBeforeRound = [];
  for (let round = 0; round < settings.rounds; round++) {
    machine.loadAverageBeforeRound.push(loadavg().map((l) => Number(l.toFixed(2))));
    // A fresh token each round: the run may outlast the 15-minute access-token lifetime.
    for (const server of stacks.filter((s) => s.server)) {
      server.token = await loginToken(server.url, server.usernames[0]);
    }
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
          `round ${round + 1}/${settings.rounds} ${scenario.id.padEnd(14)} ${stack.id.padEnd(12)} ${shown}, RSS ${rssMb?.toFixed(0)} MB`,
        );
        await waitUntilQuiet(stack.pid);
      }
    }
  }

  const overload = runPhase("overload") ? await runOverload(self) : null;

  await Promise.all(stacks.map((s) => stopProcess(s.handle)));

  // The guard's cost without HTTP, once the servers are gone and the machine is quieter.
  let guard = null;
  if (runPhase("guard")) {
    log("guard: node bench/guard-cost.mjs --json");
    guard = await runGuardCost([]);
    if (guard.error) {
      console.error(`bench/guard-cost.mjs failed: ${guard.error}`);
      process.exitCode = 1;
    } else {
      log(
        `guard: ${guard.usPerGuardedField.toFixed(2)} µs per guarded field (rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)})`,
      );
    }
  }
  machine.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));

  const rows = buildRows(samples);
  const goals = evaluateGoals(rows, startup, { overload, guard });
  const memoryFlags = memoryFlagsComparison(rows, startup);

  const report = {
    command: "npm run bench",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    loadGenerator: `autocannon ${JSON.parse(readFileSync(join(root, "node_modules/autocannon/package.json"), "utf8")).version}, in the bench process, on the same machine`,
    settings,
    stacks: stacks.map(({ id, label, nodeOptions, mallocArenaMax }) => ({
      id,
      label,
      ...(nodeOptions === undefined ? {} : { nodeOptions, mallocArenaMax }),
    })),
    scenarios: SCENARIOS.map((scenario) => ({
      id: scenario.id,
      label: scenario.label,
      stacks: stacksOf(scenario, stacks).map((s) => s.id),
    })),
    startup,
    rows,
    memoryFlags,
    overload,
    guard,
    goals,
  };
  report.table = printTable(report);
  console.log(report.table);

  if (!completeRun) {
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
