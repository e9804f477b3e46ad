// The command line and environment of bench/run.mjs: --help, --dry-run and the BENCH_* settings,
// each checked before anything starts (a bad one exits 2).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root, where dist/, bench/ and node_modules/ are. */
export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

export const HELP = `Usage: npm run bench  (or: node bench/run.mjs [--dry-run] [--help])

Benchmarks this server (production mode, SQLite) against bare node:http, Mercurius + @fastify/jwt,
GraphQL Yoga + @graphql-yoga/plugin-jwt and the naive Apollo standalone recipe (jsonwebtoken with a
string secret), all on 127.0.0.1, with autocannon in interleaved rounds. This server runs three
times: "this" with npm start's memory flags (scripts/memory-defaults.mjs), "this-default" with
Node's default flags and no MALLOC_ARENA_MAX (only in typename, typename-token and me), and
"this-lane-off" as "this" with GRAPHQL_COMPILED_LANE=false (only in me and me-cpu). After the
rounds, "this" gets me at 3 × BENCH_CONNECTIONS for one BENCH_DURATION (overload), and once the
stacks are stopped bench/guard-cost.mjs measures the guard without HTTP. Prints a table and the
goals of issues 5, 14 and 28; writes bench/results/latest.json and bench/results/latest.svg.

  --dry-run   start every stack, check one answer per scenario, measure startup, run a tiny
              guard-cost check, stop; no load, no files written (a few seconds)
  --help      this text

Scenarios: typename ({ __typename }, no token), typename-token (the same with a valid Bearer
token), me ({ me { id } }), me-cpu (me at BENCH_CPU_RATE, CPU time per request of this server with
the compiled lane on and off, "this-lane-off", and of Mercurius), me-posts (reads the database),
login (argon2id), burst (me at a steady rate, idle and during concurrent logins), and the phases
overload and guard. BENCH_SCENARIOS=me,me-cpu runs only what the goal versus Mercurius needs.

Environment (defaults in brackets):
  BENCH_DURATION     seconds of load per run [4]
  BENCH_ROUNDS       interleaved rounds; the table shows medians and the min-max range [5]
  BENCH_CONNECTIONS  concurrent connections for the throughput scenarios (overload: 3 ×) [64]
  BENCH_WARMUP       seconds of unrecorded load per stack and scenario before round 1 [2]
  BENCH_BURST_RATE   steady requests/s of \`me\` in the login-burst scenario, idle and during it [500]
  BENCH_CPU_RATE     the fixed rate (requests/s) of \`me\` in me-cpu, the same for every stack [1000]
  BENCH_BURST_LOGINS  concurrent logins (connections logging in back to back) in the login-burst
                     scenario; keep it within PASSWORD_QUEUE_MAX plus the threads, or some are
                     refused with 503 [20]
  BENCH_SCENARIOS    only these scenarios and phases, comma-separated (typename, typename-token,
                     me, me-cpu, me-posts, login, burst, overload, guard); results are then printed but
                     bench/results/ is left as it is [all]
  BENCH_STARTS       how many times \`npm start\` is timed, on a fresh data directory each [3]

Exit status: 0 when the run completed (whether or not the goals hold), 1 when a stack failed to
start or to answer correctly (or guard-cost.mjs failed its checks), 2 on a bad command line.`;

/** The options of `args`: prints HELP and exits 0 on --help or -h, exits 2 on anything unknown. */
export function parseArguments(args) {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(HELP);
    process.exit(0);
  }
  const unknown = args.filter((a) => a !== "--dry-run");
  if (unknown.length > 0) {
    console.error(`unknown argument: ${unknown.join(" ")}\n\n${HELP}`);
    process.exit(2);
  }
  return { dryRun: args.includes("--dry-run") };
}

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

/**
 * The settings, from BENCH_* or their defaults (exits 2 on one that is not a positive number);
 * latest.json records them as they are.
 */
export function readSettings() {
  return {
    durationSeconds: setting("BENCH_DURATION", 4),
    rounds: Math.round(setting("BENCH_ROUNDS", 5)),
    connections: Math.round(setting("BENCH_CONNECTIONS", 64)),
    warmupSeconds: setting("BENCH_WARMUP", 2),
    burstRate: setting("BENCH_BURST_RATE", 500),
    cpuRate: setting("BENCH_CPU_RATE", 1000),
    burstLogins: Math.round(setting("BENCH_BURST_LOGINS", 20)),
    loginUsers: 8,
    endedSessions: 32,
    postsPerUser: 5,
    npmStarts: Math.round(setting("BENCH_STARTS", 3)),
  };
}

/** The ids in BENCH_SCENARIOS, unchecked; empty means every scenario and phase. */
export function readScenarioFilter() {
  return (process.env.BENCH_SCENARIOS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
