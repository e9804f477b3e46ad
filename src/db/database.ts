import { mkdirSync } from "node:fs";
import { join } from "node:path";

import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";

import type { Config } from "../config.js";
import { createMigrationProvider } from "./migrations.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

/** One open database: the query builder, which engine it is, and how to check and close it. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** The driver's own handle, for libraries that need it (the login throttle's store). */
  readonly driver: { readonly sqlite: SqliteDatabase.Database } | { readonly pool: pg.Pool };
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Name of the SQLite file inside DATA_DIR. */
export const SQLITE_FILE = "app.db";

/**
 * Opens the configured database: PostgreSQL when `databaseUrl` is set, otherwise SQLite
 * (WAL mode, foreign keys on) in `dataDir`. Does not migrate; call {@link migrateToLatest}.
 */
export function openDatabase(config: Pick<Config, "databaseUrl" | "databaseSchema" | "dataDir">): DatabaseHandle {
  if (config.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: 10,
      // A per-connection search_path keeps every query unqualified, so one schema per test suite
      // (or per tenant) needs no change to the queries.
      ...(config.databaseSchema ? { options: `-c search_path=${config.databaseSchema}` } : {}),
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      dialect: "postgres",
      driver: { pool },
      ping: async () => void (await sql`select 1`.execute(db)),
      close: () => db.destroy(),
    };
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const sqlite = new SqliteDatabase(join(config.dataDir, SQLITE_FILE));
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return {
    db,
    dialect: "sqlite",
    driver: { sqlite },
    ping: async () => void (await sql`select 1`.execute(db)),
    close: () => db.destroy(),
  };
}

/**
 * Kysely's SQLite driver prepares every query anew; preparing is a sizeable share of a small read.
 * The queries are built from a fixed set of shapes (values are bound, never inlined), so caching the
 * prepared statement by its SQL text is bounded in practice; a cap keeps it bounded anyway.
 */
function withStatementCache(sqlite: SqliteDatabase.Database): SqliteDatabase.Database {
  const cache = new Map<string, SqliteDatabase.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, property, receiver) {
      if (property !== "prepare") return Reflect.get(target, property, receiver);
      return (source: string) => {
        let statement = cache.get(source);
        // A statement in the middle of iterating cannot be reused; such queries get a fresh one.
        if (statement === undefined || statement.busy) {
          statement = prepare(source);
          if (cache.size >= 500) cache.delete(cache.keys().next().value!);
          cache.set(source, statement);
        }
        return statement;
      };
    },
  });
}

/**
 * Applies every pending migration. Safe to run from several instances at once: on PostgreSQL
 * Kysely holds an advisory lock around the run; on SQLite (where its lock covers one connection
 * only) a process that loses the race to another one on the same file retries until the winner
 * has recorded its work.
 */
export async function migrateToLatest(handle: DatabaseHandle, schema?: string): Promise<void> {
  if (handle.dialect === "postgres" && schema) {
    try {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(handle.db);
    } catch (error) {
      // Two instances creating the schema at once: the loser sees a duplicate, which is fine.
      if (!isUniqueViolation(error) && (error as { code?: string }).code !== "42P06") throw error;
    }
  }
  const migrator = new Migrator({
    db: handle.db,
    provider: createMigrationProvider(handle.dialect),
    ...(handle.dialect === "postgres" ? { migrationTableSchema: schema ?? "public" } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return;
    const racing = handle.dialect === "sqlite" && /already exists/.test(String((error as Error).message)) && attempt < 50;
    if (racing) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`Database migration ${failed ?? ""} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * True when `value` holds U+0000. PostgreSQL's text type cannot store that character and refuses
 * even to compare with it (an error, not "no match"), so stores answer "no such row" for such an id
 * before asking, as SQLite would: no id they ever wrote contains one.
 */
export function containsNul(value: string): boolean {
  return value.includes("\u0000");
}

/** True when `error` is a unique-constraint violation from either driver. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}
