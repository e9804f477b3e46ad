// The seeded database of bench/growth.mjs: N users, N posts (one heavy author among them), N live
// sessions, N API tokens and 10 audit events per user, written by straight SQL after the app's own
// migrations. Everything is computed from the row number (ids, names, times from a base day,
// authors), so two seeds of one size on one day are the same rows; only the ADMIN's password hash is made at run time, once,
// by the app's own hasher, and copied into every user's row (any seeded user can sign in).
//
// The big tables' secondary indexes are dropped before the load and built again after it, from the
// definitions the migrations left (a sorted build is many times faster than inserting 10M rows
// into four B-trees in random order); the database ends with exactly the migrated schema.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import Sqlite from "better-sqlite3";
import pg from "pg";

export const ADMIN = { username: "u0000001", password: "growth bench password 1" };
/** Each user's 10 audit events' types, in order; EMPTY_TYPE is a real type that no seeded row has. */
export const SEEDED_TYPES = [
  "LOGIN_SUCCEEDED",
  "LOGIN_FAILED",
  "TOKEN_REFRESHED",
  "TOKEN_REFRESHED",
  "TOKEN_REFRESHED",
  "LOGIN_SUCCEEDED",
  "TOKEN_REFRESHED",
  "TOKEN_REFRESHED",
  "LOGGED_OUT",
  "LOGIN_SUCCEEDED",
];
export const EMPTY_TYPE = "PASSWORD_RESET";
export const EVENTS_PER_USER = 10;
const TABLES = ["users", "posts", "sessions", "api_tokens", "audit_events"];
/**
 * Row i of a table is dated i seconds after midnight (UTC) 20 days before the run's day (events: a
 * tenth of a second per row), so that 1M rows end in the past and inside AUDIT_RETENTION (90 days):
 * the housekeeping chores the server runs at start find nothing to prune, as on a live service.
 */
const BASE_SECONDS = Math.floor(Date.now() / 86_400_000) * 86_400 - 20 * 86_400;

/** The ids and shapes of a seed of `n` users: what the queries of the bench look for. */
export function seedPlan(n) {
  const heavyPosts = Math.min(10_000, Math.floor(n / 2));
  return {
    n,
    heavyPosts,
    userId: (i) => idOf(0, i),
    postId: (j) => idOf(1, j),
    auditUser: (k) => Math.floor((k - 1) / EVENTS_PER_USER) + 1,
    adminId: idOf(0, 1),
    /** User 3 writes posts 1..heavyPosts; every other post goes to a user spread over all of them. */
    heavyAuthorId: idOf(0, 3),
    /** Four other ADMINs, disabled: rows the last-admin check must not count. */
    disabledAdmins: [2, 4, 5, 6].filter((i) => i <= n),
  };
}

/** Row i of table t (0 users, 1 posts, 2 sessions, 3 API tokens): the same id in both databases. */
const idOf = (t, i) => `0000000${t}-0000-4000-8000-${String(i).padStart(12, "0")}`;

/** The app's own argon2id hash of ADMIN.password, made by the built server's PasswordHasher. */
export async function adminHash(root) {
  const { PasswordHasher } = await import(join(root, "dist/src/users/passwords.js"));
  const hasher = new PasswordHasher(1);
  try {
    return await hasher.hash(ADMIN.password);
  } finally {
    await hasher.close();
  }
}

/** Runs the built app's migrations on an empty database (a DATA_DIR, or a PostgreSQL schema). */
export async function migrate(root, { dataDir, url, schema }) {
  const { openDatabase, migrateToLatest } = await import(join(root, "dist/src/db/database.js"));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const quiet = { warn: () => undefined, info: () => undefined };
  const handle = openDatabase({ dataDir, databaseUrl: url, databaseSchema: schema, databaseTimeoutMs: 600_000 }, quiet);
  try {
    await migrateToLatest(handle, schema);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The rows, as SELECTs over a row number `i` from 1 to the table's size. Each dialect gives its
// own spelling of the few expressions that differ.

function rowSelects(p, hash, d) {
  const { n, heavyPosts } = p;
  const q = (s) => `'${s.replaceAll("'", "''")}'`;
  const typeCase = `case (i - 1) % ${EVENTS_PER_USER} ${SEEDED_TYPES.map((t, k) => `when ${k} then ${q(t)}`).join(" ")} end`;
  const admins = [1, ...p.disabledAdmins];
  // Post j (after the heavy author's) goes to the user (j * 7919 mod n) + 1: every user gets about one.
  const author = `case when i <= ${heavyPosts} then 3 else (i * 7919) % ${n} + 1 end`;
  const user = `((i - 1) / ${EVENTS_PER_USER} + 1)`;
  return {
    users: `select ${d.id("0", "i")}, ${d.cat(q("u"), d.pad("i", 7))}, ${d.cat(q("u"), d.pad("i", 7))}, ${q(hash)},
      case when i in (${admins.join(", ")}) then '["ADMIN","USER"]' else '["USER"]' end,
      ${d.at("i")}, ${d.at("i")},
      case when i in (${p.disabledAdmins.join(", ") || 0}) then ${d.at("i")} else null end`,
    posts: `select ${d.id("1", "i")}, ${d.id("0", author)}, ${d.cat(q("post "), "i")},
      ${d.cat(q("The body of seeded post number "), "i", q(", a sentence or two long, like most posts."))},
      ${d.at("i")}, ${d.at("i")}`,
    sessions: `select ${d.id("2", "i")}, ${d.id("0", "i")}, ${d.at("i")}, ${d.at("i")}, ${d.far()}, 'growth bench', '127.0.0.1'`,
    api_tokens: `select ${d.id("3", "i")}, ${d.id("0", "i")}, 'growth bench', '["PROFILE_READ"]', 'unusable', ${d.at("i")}, ${d.far()}`,
    audit_events: `select ${typeCase}, ${d.id("0", user)}, ${d.cat(q("u"), d.pad(user, 7))}, '127.0.0.1', ${d.tenths("i")}`,
  };
}

const COLUMNS = {
  users: "id, username, username_normalized, password_hash, roles, created_at, updated_at, disabled_at",
  posts: "id, author_id, title, body, created_at, updated_at",
  sessions: "id, user_id, created_at, last_used_at, expires_at, user_agent, ip",
  api_tokens: "id, user_id, name, scopes, secret_hash, created_at, expires_at",
  audit_events: "type, user_id, username, ip, at",
};

const sizes = (n) => ({ users: n, posts: n, sessions: n, api_tokens: n, audit_events: n * EVENTS_PER_USER });

const SQLITE = {
  id: (table, i) => `printf('0000000${table}-0000-4000-8000-%012d', ${i})`,
  pad: (i, width) => `printf('%0${width}d', ${i})`,
  cat: (...parts) => parts.join(" || "),
  at: (i) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${BASE_SECONDS} + ${i}, 'unixepoch')`,
  tenths: (i) => `strftime('%Y-%m-%dT%H:%M:%fZ', ${BASE_SECONDS} + ${i} / 10.0, 'unixepoch')`,
  far: () => `'2099-01-01T00:00:00.000Z'`,
};

const POSTGRES = {
  id: (table, i) => `'0000000${table}-0000-4000-8000-' || lpad((${i})::text, 12, '0')`,
  pad: (i, width) => `lpad((${i})::text, ${width}, '0')`,
  cat: (...parts) => parts.map((p) => `(${p})::text`).join(" || "),
  at: (i) => `to_timestamp(${BASE_SECONDS} + ${i})`,
  tenths: (i) => `to_timestamp(${BASE_SECONDS} + ${i} / 10.0)`,
  far: () => `timestamptz '2099-01-01T00:00:00Z'`,
};

/** Seeds a migrated SQLite DATA_DIR in one transaction; returns the rows written per table. */
export function seedSqlite(dataDir, n, hash) {
  const db = new Sqlite(join(dataDir, "app.db"));
  try {
    db.pragma("journal_mode = off");
    db.pragma("synchronous = off");
    db.pragma("cache_size = -262144");
    const indexes = db
      .prepare(
        `select name, sql from sqlite_master where type = 'index' and sql is not null
         and sql not like 'CREATE UNIQUE%' and tbl_name in (${TABLES.map((t) => `'${t}'`).join(", ")})`,
      )
      .all();
    const selects = rowSelects(seedPlan(n), hash, SQLITE);
    db.transaction(() => {
      for (const { name } of indexes) db.exec(`drop index "${name}"`);
      for (const [table, count] of Object.entries(sizes(n))) {
        db.exec(`with recursive r(i) as (select 1 union all select i + 1 from r where i < ${count})
          insert into ${table} (${COLUMNS[table]}) ${selects[table]} from r`);
      }
      for (const { sql } of indexes) db.exec(sql);
    })();
    // No ANALYZE: the app never runs it on SQLite, so the planner works without statistics, as there.
    db.pragma("journal_mode = wal");
    return sizes(n);
  } finally {
    db.close();
  }
}

/** Seeds a migrated PostgreSQL schema in one transaction with generate_series; returns the rows per table. */
export async function seedPostgres(url, schema, n, hash) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`set search_path to "${schema}"`);
    await client.query("set maintenance_work_mem = '512MB'");
    await client.query("set synchronous_commit = off");
    await client.query("begin");
    const { rows: indexes } = await client.query(
      `select indexname, indexdef from pg_indexes where schemaname = $1 and tablename = any($2)
       and indexdef not like 'CREATE UNIQUE%'`,
      [schema, TABLES],
    );
    for (const { indexname } of indexes) await client.query(`drop index "${indexname}"`);
    const selects = rowSelects(seedPlan(n), hash, POSTGRES);
    for (const [table, count] of Object.entries(sizes(n))) {
      await client.query(
        `insert into ${table} (${COLUMNS[table]}) ${selects[table]} from generate_series(1::bigint, ${count}) as r(i)`,
      );
    }
    for (const { indexdef } of indexes) await client.query(indexdef);
    await client.query("commit");
    for (const table of TABLES) await client.query(`vacuum analyze ${table}`);
    return sizes(n);
  } catch (error) {
    await client.query("rollback").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

/** Drops a seeded PostgreSQL schema. */
export async function dropSchema(url, schema) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}
