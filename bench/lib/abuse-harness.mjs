// The server, database, bystander and tallies of bench/abuse.mjs.
//
// The server runs as `npm start` runs it: `node <checkout>/dist/bundle/main.js` with npm start's
// memory flags (startEnv of that checkout's scripts/memory-defaults.mjs), production, LOG_LEVEL=info (written to
// a file, so the bench never holds the server back by reading its log slowly), on a fresh SQLite
// DATA_DIR or a fresh PostgreSQL schema, with a metrics listener of its own.
import { fork, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";

import Sqlite from "better-sqlite3";
import pg from "pg";

import { freePort } from "./processes.mjs";

export const PASSWORD = "abuse bench password 1234";

// Whatever happens to the bench, no server or sampler it started outlives it.
const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Counts of what came back: `tally.add("200 RATE_LIMITED")`. */
export class Tally {
  counts = {};
  add(key, n = 1) {
    this.counts[key] = (this.counts[key] ?? 0) + n;
  }
  get total() {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
  toString() {
    return formatCounts(this.counts);
  }
}

/** "200×12 503×3", largest first. */
export function formatCounts(counts) {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}×${v}`)
    .join(" ");
}

/** The first error code in a GraphQL answer's text (or of its beginning and end), or "". */
export function codeOf(text) {
  return /"code":"([A-Za-z_]+)"/.exec(text)?.[1] ?? "";
}

/** What a failed request's error is called in a tally: ECONNRESET, ECONNREFUSED, timeout… */
export function errorName(error) {
  if (error?.name === "TimeoutError" || error?.name === "AbortError") return "timeout";
  return error?.cause?.code ?? error?.code ?? error?.cause?.name ?? error?.name ?? String(error);
}

/**
 * Starts the server at `main` (a dist/bundle/main.js) on a fresh database. `postgresUrl` picks
 * PostgreSQL in a new schema; `env` is added last (an attack's settings).
 */
export async function startServer({ main, postgresUrl, env = {}, checkout }) {
  const dataDir = mkdtempSync(join(tmpdir(), "gta-abuse-"));
  const schema = postgresUrl ? `abuse_${randomBytes(5).toString("hex")}` : undefined;
  const port = await freePort();
  const metricsPort = await freePort();
  const base = { ...process.env };
  for (const name of checkout.variables) delete base[name];
  const childEnv = checkout.startEnv({
    ...base,
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    METRICS_HOST: "127.0.0.1",
    METRICS_PORT: String(metricsPort),
    DATA_DIR: dataDir,
    JWT_SECRET_KEY: randomBytes(48).toString("base64url"),
    LOG_LEVEL: "info",
    REGISTER_MAX_PER_IP: "0",
    ...(postgresUrl ? { DATABASE_URL: postgresUrl, DATABASE_SCHEMA: schema } : {}),
    ...env,
  });
  const logFile = join(dataDir, "server.log");
  const logFd = openSync(logFile, "a");
  // cwd is the data directory, so a developer's .env in the checkout does not leak in.
  const child = spawn(process.execPath, [main], { cwd: dataDir, env: childEnv, stdio: ["ignore", logFd, logFd] });
  closeSync(logFd);
  const server = {
    child,
    pid: child.pid,
    dataDir,
    schema,
    postgresUrl,
    url: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    origin: `http://127.0.0.1:${port}`,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    exit: undefined,
    logBytes: () => (existsSync(logFile) ? statSync(logFile).size : 0),
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    alive: () => server.exit === undefined,
  };
  server.exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      server.exit = { code, signal, at: performance.now() };
      resolve(server.exit);
    }),
  );
  children.add(child);
  child.on("exit", () => children.delete(child));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!server.alive())
      throw new Error(`server exited (${describeExit(server)}) before answering:\n${server.log().slice(-3000)}`);
    try {
      const response = await fetch(server.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"query":"{ __typename }"}',
      });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`server not answering after 30 s:\n${server.log().slice(-3000)}`);
    await sleep(20);
  }
  return server;
}

/** "exit 134 (heap out of memory)", "SIGKILL", "exit 0"… */
export function describeExit(server) {
  if (!server.exit) return "alive";
  const what = server.exit.signal ?? `exit ${server.exit.code}`;
  const log = server.log();
  const oom = /heap out of memory|Allocation failed|OOM/.test(log) ? " (heap out of memory)" : "";
  return `${what}${oom}`;
}

/** SIGTERM, SIGKILL after 12 s; then the data directory and the PostgreSQL schema are dropped. */
export async function stopServer(server) {
  if (server.alive()) {
    server.child.kill("SIGTERM");
    const timer = setTimeout(() => server.child.kill("SIGKILL"), 12_000);
    await server.exited;
    clearTimeout(timer);
  }
  await server.db?.close();
  rmSync(server.dataDir, { recursive: true, force: true });
  if (server.schema) {
    const client = new pg.Client({ connectionString: server.postgresUrl });
    await client.connect();
    try {
      await client.query(`drop schema if exists "${server.schema}" cascade`);
    } finally {
      await client.end();
    }
  }
}

/**
 * What the server's own checkout says (falling back to `fallback`'s): its CONFIG_VARIABLES, removed
 * from the server's environment, and the startEnv of its scripts/memory-defaults.mjs, so that a
 * build with other memory flags runs with its own.
 */
export async function loadCheckout(dir, fallback) {
  const load = async (path) => {
    for (const base of [dir, fallback]) {
      if (existsSync(join(base, path))) return import(pathToFileURL(join(base, path)).href);
    }
    throw new Error(`${path} is in neither ${dir} nor ${fallback}`);
  };
  const { CONFIG_VARIABLES } = await load("dist/src/config.js");
  const { startEnv } = await load("scripts/memory-defaults.mjs");
  return { variables: CONFIG_VARIABLES, startEnv };
}

/** A startEnv for Node's defaults: the environment as given, without npm start's flags or MALLOC_ARENA_MAX. */
export function withoutArenaMax(env) {
  const out = { ...env };
  delete out.MALLOC_ARENA_MAX;
  return out;
}

/** One GraphQL POST: { status, text, code, json }. Never throws for an HTTP answer; network errors do throw. */
export async function gql(server, query, variables, token, { timeoutMs = 30_000, headers = {} } = {}) {
  const response = await fetch(server.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, text, code: codeOf(text), json };
}

/** Registers `username` and returns { id, token }; throws when refused. */
export async function register(server, username) {
  const r = await gql(server, "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }", {
    i: { username, password: PASSWORD },
  });
  if (!r.json?.data) throw new Error(`register ${username}: ${r.status} ${r.text.slice(0, 300)}`);
  return { id: r.json.data.register.user.id, token: r.json.data.register.accessToken };
}

/**
 * Straight SQL on the server's database (SQLite in WAL mode beside the running server, or the
 * PostgreSQL schema): `query(sql, params)` with $1… placeholders returns rows.
 */
export async function database(server) {
  if (server.db) return server.db;
  if (server.postgresUrl) {
    const client = new pg.Client({ connectionString: server.postgresUrl });
    await client.connect();
    await client.query(`set search_path to "${server.schema}"`);
    server.db = {
      query: async (sql, params = []) => (await client.query(sql, params)).rows,
      size: async () =>
        Number(
          (
            await client.query(
              `select coalesce(sum(pg_total_relation_size(c.oid)), 0) as n from pg_class c
               join pg_namespace s on s.oid = c.relnamespace where s.nspname = $1 and c.relkind = 'r'`,
              [server.schema],
            )
          ).rows[0].n,
        ),
      close: () => client.end(),
    };
  } else {
    const file = join(server.dataDir, "app.db");
    const sqlite = new Sqlite(file, { timeout: 10_000 });
    server.db = {
      query: async (sql, params = []) => {
        const statement = sqlite.prepare(sql.replace(/\$\d+/g, "?"));
        return statement.reader ? statement.all(...params) : (statement.run(...params), []);
      },
      // The stored data, not the write-ahead log's high-water mark: the log is checkpointed first.
      size: async () => {
        sqlite.pragma("wal_checkpoint(TRUNCATE)");
        return ["", "-wal"].reduce(
          (n, suffix) => n + (existsSync(file + suffix) ? statSync(file + suffix).size : 0),
          0,
        );
      },
      close: async () => sqlite.close(),
    };
  }
  return server.db;
}

/** Inserts `rows` (arrays in `columns` order) in batches of multi-row INSERTs. */
export async function insertRows(db, table, columns, rows) {
  const batch = Math.floor(6000 / columns.length);
  for (let i = 0; i < rows.length; i += batch) {
    const slice = rows.slice(i, i + batch);
    const values = slice.map((_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(", ")})`);
    await db.query(`insert into ${table} (${columns.join(", ")}) values ${values.join(", ")}`, slice.flat());
  }
}

/** `count` posts by `authorId` straight into the database, newest first by created_at; returns their ids. */
export async function seedPosts(server, authorId, count, body = (i) => `body ${i}`) {
  const db = await database(server);
  const now = Date.now();
  const rows = [];
  for (let i = 0; i < count; i++) {
    const at = new Date(now - (i + 1) * 1000).toISOString();
    rows.push([crypto.randomUUID(), authorId, `seeded post ${i}`, body(i), at, at]);
  }
  await insertRows(db, "posts", ["id", "author_id", "title", "body", "created_at", "updated_at"], rows);
  return rows.map((r) => r[0]);
}

/** The bystander and memory sampler (lib/abuse-sampler.mjs) for `server`, signed in as `user`. */
export function startSampler(server, user) {
  const child = fork(new URL("./abuse-sampler.mjs", import.meta.url), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  child.send({
    start: { url: server.url, token: user.token, userId: user.id, pid: server.pid, metricsUrl: server.metricsUrl },
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return {
    phase: (name) => child.send({ phase: name }),
    stop: () =>
      new Promise((resolve) => {
        child.once("message", (m) => resolve(m.phases));
        child.send({ stop: true });
      }),
  };
}
