import { join } from "node:path";

import SqliteDatabase from "better-sqlite3";
import { Kysely, PostgresDialect, sql, SqliteDialect } from "kysely";
import pg from "pg";

import type { Config } from "../config.js";
import { createPrivateFile, makePrivateFolder } from "../data-dir.js";
import type { Database, Dialect } from "./schema.js";
import { isTransactionConflict } from "./sql-errors.js";
import { isDatabaseUnavailable, OutageLog, withTimeout } from "./unavailable.js";

// Migrating (migrate.ts) and telling the drivers' errors apart (sql-errors.ts) have files of
// their own; they are exported from here too, the module the stores and the wiring import.
export { migrateToLatest } from "./migrate.js";
export { isTransactionConflict, isUniqueViolation } from "./sql-errors.js";

/** What the database module logs: connection trouble, once per outage. */
export type DatabaseLogger = { warn(obj: object, msg: string): void; info(msg: string): void };

export type { Dialect };

/** One open database: the query builder, which engine it is, and how to check and close it. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** The driver's own handle, for libraries that need it (the login throttle's store). */
  readonly driver: { readonly sqlite: SqliteDatabase.Database } | { readonly pool: pg.Pool };
  /** Resolves when the database answers a trivial query within DATABASE_TIMEOUT; rejects otherwise. */
  ping(): Promise<void>;
  /** DATABASE_TIMEOUT in milliseconds: the longest wait for a connection or a statement. */
  readonly timeoutMs: number;
  close(): Promise<void>;
}

/** Name of the SQLite file inside DATA_DIR. */
export const SQLITE_FILE = "app.db";

/** The SQLite file and those SQLite keeps beside it (WAL, shared memory, a rollback journal): all private. */
export const SQLITE_FILES = [SQLITE_FILE, `${SQLITE_FILE}-wal`, `${SQLITE_FILE}-shm`, `${SQLITE_FILE}-journal`];

/**
 * Opens the configured database: PostgreSQL when `databaseUrl` is set, otherwise SQLite
 * (WAL mode, foreign keys on) in `dataDir`. Does not migrate; call {@link migrateToLatest}.
 *
 * Every wait is bounded by `databaseTimeoutMs`: on PostgreSQL connecting (and waiting for a free
 * pooled connection), each statement on the server (`statement_timeout`) and each answer on the
 * client (`query_timeout`, for a server or network that is frozen rather than down); on SQLite the
 * busy wait for another connection's lock. A pooled connection that the server ends (a restart,
 * a failover, `pg_terminate_backend`) is logged once at warn and replaced on the next query: it
 * never takes the process down.
 */
export function openDatabase(
  config: Pick<Config, "databaseUrl" | "databaseSchema" | "dataDir" | "databaseTimeoutMs">,
  logger: DatabaseLogger,
): DatabaseHandle {
  const timeoutMs = config.databaseTimeoutMs;
  if (config.databaseUrl) {
    const pool = new pg.Pool({
      ...postgresConnectionOptions(config),
      max: 10,
    });
    const outage = new OutageLog(logger, "PostgreSQL");
    // Without a listener, an idle pooled connection that the server ends throws an unhandled
    // 'error' event and the process exits. pg-pool has already dropped that client when this runs.
    pool.on("error", (error) => outage.failed(error));
    pool.on("connect", (client) => {
      outage.recovered();
      // A checked-out client whose server goes away emits 'error' on itself too.
      client.on("error", (error) => outage.failed(error));
    });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: discardingBrokenClients(pool) }) });
    return {
      db,
      dialect: "postgres",
      driver: { pool },
      timeoutMs,
      ping: async () => void (await withTimeout(sql`select 1`.execute(db), timeoutMs, "PostgreSQL")),
      close: () => db.destroy(),
    };
  }
  makePrivateFolder(config.dataDir);
  const file = join(config.dataDir, SQLITE_FILE);
  // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm it creates the same mode.
  createPrivateFile(file);
  const sqlite = new SqliteDatabase(file, { timeout: timeoutMs });
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma(`busy_timeout = ${Math.trunc(timeoutMs)}`);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return {
    db,
    dialect: "sqlite",
    driver: { sqlite },
    timeoutMs,
    ping: async () => void (await sql`select 1`.execute(db)),
    close: () => db.destroy(),
  };
}

/**
 * node-postgres options for every connection this service opens to PostgreSQL (the pool and the
 * revocation listener), so both have the same timeouts, keep-alive and search_path.
 */
export function postgresConnectionOptions(
  config: Pick<Config, "databaseUrl" | "databaseSchema" | "databaseTimeoutMs">,
): pg.ClientConfig & { connectionTimeoutMillis: number } {
  const timeoutMs = Math.trunc(config.databaseTimeoutMs);
  return {
    connectionString: config.databaseUrl,
    connectionTimeoutMillis: timeoutMs,
    // The server cancels a statement that runs too long (57014); the client gives up a little later
    // on one whose answer never comes, which only a frozen server or network causes.
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 500,
    // Detects a peer that vanished without a FIN (a failover, a dropped NAT entry).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A per-connection search_path keeps every query unqualified, so one schema per test suite
    // (or per tenant) needs no change to the queries.
    ...(config.databaseSchema ? { options: `-c search_path=${config.databaseSchema}` } : {}),
  };
}

/**
 * The pool as Kysely sees it, except that a client whose query failed because the connection did
 * not answer is destroyed on release instead of going back to the pool: node-postgres keeps a timed
 * out query as the connection's active one, so every later query on that client would wait behind it.
 */
function discardingBrokenClients(pool: pg.Pool) {
  return {
    connect: async () => {
      const client = await pool.connect();
      let broken: Error | undefined;
      return {
        query: (text: string, values: readonly unknown[]) =>
          client.query(text, values as unknown[]).catch((error: unknown) => {
            if (isDatabaseUnavailable(error)) broken = error as Error;
            throw error;
          }),
        release: () => client.release(broken),
      };
    },
    end: () => pool.end(),
  } as unknown as pg.Pool;
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
      if (property !== "prepare") return Reflect.get(target, property, receiver) as unknown;
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
 * True when `value` holds U+0000. PostgreSQL's text type cannot store that character and refuses
 * even to compare with it (an error, not "no match"), so stores answer "no such row" for such an id
 * before asking, as SQLite would: no id they ever wrote contains one.
 */
export function containsNul(value: string): boolean {
  return value.includes("\u0000");
}

/**
 * Runs `work` in a transaction serialised with every other one that names the same `lock` (a
 * short fixed name, e.g. `last-admin`): on PostgreSQL it first takes a transaction-level advisory
 * lock on that name in the current schema (`pg_advisory_xact_lock`, released at commit or
 * rollback), so transactions that check a rule over several rows and then write one of them cannot
 * interleave or lock those rows in opposite orders; on SQLite it is `BEGIN IMMEDIATE`, which takes
 * the write lock before the first read, so no other process's write can slip between the check and
 * the write (within one process the single connection already runs one transaction at a time). A
 * deadlock or serialisation failure on PostgreSQL (another kind of transaction locking the same rows
 * in another order) rolls back and is retried once; a second one is thrown.
 */
export async function serializedTransaction<T>(
  db: Kysely<Database>,
  dialect: Dialect,
  lock: string,
  work: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  if (dialect === "sqlite") {
    return db.connection().execute(async (connection) => {
      await sql`begin immediate`.execute(connection);
      let result: T;
      try {
        result = await work(connection);
      } catch (error) {
        await sql`rollback`.execute(connection).catch(() => undefined);
        throw error;
      }
      await sql`commit`.execute(connection);
      return result;
    });
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(hashtext(current_schema() || ':' || ${lock}))`.execute(trx);
        return work(trx);
      });
    } catch (error) {
      if (attempt >= 2 || !isTransactionConflict(error)) throw error;
    }
  }
}
