// `node bench/growth.mjs`: issue 28's growth benchmark. For each database and size it seeds a
// fresh database by straight SQL (lib/growth-seed.mjs), starts the built server on it as
// bench/lib/stacks.mjs does, signs in as the seeded ADMIN and times each list and filter query
// through HTTP, one at a time (lib/growth-queries.mjs); then the database is dropped.
//
// A measurement, not a test: it prints p50/p99 per query and size, and the verdicts against the
// goal; it exits 0 whatever they are (non-zero only on a bad command line or a failed query).
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { startEnv } from "../scripts/memory-defaults.mjs";
import { growthQueries, probeMe, timeQueries } from "./lib/growth-queries.mjs";
import { formatGrowth, verdicts } from "./lib/growth-report.mjs";
import { ADMIN, adminHash, dropSchema, migrate, seedPlan, seedPostgres, seedSqlite } from "./lib/growth-seed.mjs";
import { timeStores } from "./lib/growth-sql.mjs";
import { freePort, serverEnv, startProcess, stopProcess, waitForGraphql } from "./lib/processes.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: node bench/growth.mjs [options]      (needs \`npm run build\` first)

Seeds N users, N posts (one author with min(10,000, N/2) of them), N live sessions, N API tokens
and 10 audit events per user (4 types; PASSWORD_RESET has none), by straight SQL after the
migrations, for each size; starts dist/bundle/main.js (NODE_ENV=production, npm start's memory
flags) on it, signs in as the ADMIN u0000001, and times every list and filter query through HTTP,
one at a time, in rounds: p50 and p99 in ms. Then \`me\` asked every 10 ms while the slowest query
runs back to back, and the same lists asked of the app's own stores (dist/src) in this process,
without HTTP: the SQL level. Goal: every query at most 5 ms p50 at 1M, and no size worse than 2x
its p50 at the smallest size. Each seeded DATA_DIR or schema is removed afterwards.

Options:
  --sizes <list>        comma-separated user counts [10000,100000,1000000]
  --db <name>           sqlite, postgres or both [both]
  --postgres <url>      PostgreSQL server [postgres://postgres@127.0.0.1:5432/test]
  --samples <n>         timed runs of each query [100]
  --warmup <n>          untimed runs first [5]
  --probe-seconds <n>   how long me is asked during the slowest query [3]
  --indexes <which>     after: the migrated schema; before: without the list indexes of
                        migrations 0008, 0011 and 0012 (0007's, posts_author_idx restored) [after]
  --json <file>         the results as JSON as well
  --report <files>      measure nothing: print the report of earlier --json files together
                        (comma-separated; e.g. the small sizes and 1M, run at different times)
  --help`;

const { values: options } = parseArgs({
  options: {
    sizes: { type: "string", default: "10000,100000,1000000" },
    db: { type: "string", default: "both" },
    postgres: { type: "string", default: "postgres://postgres@127.0.0.1:5432/test" },
    samples: { type: "string", default: "100" },
    warmup: { type: "string", default: "5" },
    "probe-seconds": { type: "string", default: "3" },
    indexes: { type: "string", default: "after" },
    json: { type: "string" },
    report: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  console.log(HELP);
  process.exit(0);
}
if (options.report) {
  const earlier = options.report.split(",").map((file) => JSON.parse(readFileSync(file, "utf8")));
  const runs = earlier.flatMap((r) => r.runs);
  const samples = [...new Set(earlier.map((r) => r.options.samples))].join("/");
  const indexes = [...new Set(earlier.map((r) => r.options.indexes))].join("/");
  const sqlVerdicts = verdicts(runs, "sqlResults");
  console.log(formatGrowth({ options: { samples, indexes }, runs, verdicts: verdicts(runs), sqlVerdicts }));
  process.exit(0);
}
const sizes = options.sizes.split(",").map(Number);
const databases = options.db === "both" ? ["sqlite", "postgres"] : [options.db];
if (
  sizes.some((n) => !Number.isInteger(n) || n < 100) ||
  databases.some((d) => !["sqlite", "postgres"].includes(d)) ||
  !["after", "before"].includes(options.indexes)
) {
  console.error(HELP);
  process.exit(2);
}

/** The indexes migrations 0008, 0011 and 0012 added; --indexes before drops them and restores 0001's posts_author_idx. */
const LATER_INDEXES = [
  "posts_author_created_id_idx",
  "users_created_id_idx",
  "sessions_user_live_idx",
  "api_tokens_user_live_idx",
  "audit_events_type_at_idx",
  "audit_events_user_at_idx",
  "refresh_tokens_spent_idx",
  "sessions_expires_at_idx",
  "users_active_admin_idx",
];

async function withoutLaterIndexes(kind, target) {
  const statements = [
    ...LATER_INDEXES.map((name) => `drop index if exists ${name}`),
    "create index posts_author_idx on posts (author_id, created_at)",
  ];
  if (kind === "sqlite") {
    const { default: Sqlite } = await import("better-sqlite3");
    const db = new Sqlite(join(target.dataDir, "app.db"));
    for (const s of statements) db.exec(s);
    db.close();
  } else {
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    await client.query(`set search_path to "${target.schema}"`);
    for (const s of statements) await client.query(s);
    await client.end();
  }
}

/** Seeds one database of `n` users, measures it, and removes it whatever happens. */
async function measure(kind, n, hash) {
  const tag = randomBytes(4).toString("hex");
  const target = {
    dataDir: join(tmpdir(), `gta-growth-${kind}-${n}-${tag}`),
    ...(kind === "postgres" ? { url: options.postgres, schema: `growth_${n}_${tag}` } : {}),
  };
  let server;
  try {
    const seedStart = performance.now();
    await migrate(root, target);
    const rows =
      kind === "sqlite" ? seedSqlite(target.dataDir, n, hash) : await seedPostgres(target.url, target.schema, n, hash);
    const seedMs = performance.now() - seedStart;
    if (options.indexes === "before") await withoutLaterIndexes(kind, target);
    const port = await freePort();
    const env = await serverEnv({
      port,
      dataDir: target.dataDir,
      secret: randomBytes(48).toString("base64url"),
      extra: {
        WRITES_MAX_PER_USER: "0",
        ...(kind === "postgres" ? { DATABASE_URL: target.url, DATABASE_SCHEMA: target.schema } : {}),
      },
    });
    Object.assign(env, startEnv(env));
    const url = `http://127.0.0.1:${port}/graphql`;
    server = startProcess(process.execPath, [join(root, "dist/bundle/main.js")], { env, cwd: target.dataDir });
    await waitForGraphql(server, url, performance.now(), 120_000);
    const token = await signIn(url);
    const queries = growthQueries(seedPlan(n), seedPlan(n).adminId);
    const timing = { samples: Number(options.samples), warmup: Number(options.warmup) };
    const results = await timeQueries(url, token, queries, timing);
    const slowest = results
      .filter((r) => !["me", "last-ADMIN check"].includes(r.name))
      .sort((a, b) => b.p50 - a.p50)[0];
    const probe = await probeMe(
      url,
      token,
      queries.find((q) => q.name === slowest.name),
      Number(options["probe-seconds"]) * 1000,
    );
    const sqlResults = await timeStores(root, target, kind, seedPlan(n), timing);
    return { db: kind, size: n, seedMs, rows, load: loadavg()[0], results, sqlResults, probe };
  } finally {
    if (server) await stopProcess(server);
    rmSync(target.dataDir, { recursive: true, force: true });
    if (target.schema) await dropSchema(target.url, target.schema);
  }
}

async function signIn(url) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
      variables: { i: { username: ADMIN.username, password: ADMIN.password } },
    }),
  });
  const body = await response.json();
  if (!body.data) throw new Error(`login as ${ADMIN.username}: ${JSON.stringify(body).slice(0, 300)}`);
  return body.data.login.accessToken;
}

const hash = await adminHash(root);
const runs = [];
for (const kind of databases) {
  for (const n of sizes) {
    console.error(`${kind} ${n.toLocaleString("en")} users: seeding, then timing (load ${loadavg()[0].toFixed(2)})`);
    const run = await measure(kind, n, hash);
    console.error(`  seeded in ${(run.seedMs / 1000).toFixed(1)} s`);
    runs.push(run);
  }
}
const report = {
  at: new Date().toISOString(),
  options,
  runs,
  verdicts: verdicts(runs),
  sqlVerdicts: verdicts(runs, "sqlResults"),
};
console.log(formatGrowth(report));
if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
