import { inspect } from "node:util";

import { type DatabaseIntrospector, type Kysely, Migrator, sql, type TableMetadata } from "kysely";

import { SQLITE_MESSAGES } from "../library-messages.js";
import { createMigrationProvider } from "./migrations.js";
import type { Database, Dialect } from "./schema.js";
import { isUniqueViolation } from "./sql-errors.js";

/**
 * Applies every pending migration. Safe to run from several instances at once: on PostgreSQL
 * Kysely holds an advisory lock around the run; on SQLite (where its lock covers one connection
 * only) a process that loses the race to another one on the same file retries until the winner
 * has recorded its work.
 */
export async function migrateToLatest(
  handle: { readonly db: Kysely<Database>; readonly dialect: Dialect },
  schema?: string,
): Promise<void> {
  if (handle.dialect === "postgres" && schema) {
    try {
      await sql`create schema if not exists ${sql.id(schema)}`.execute(handle.db);
    } catch (error) {
      // Two instances creating the schema at once: the loser sees a duplicate, which is fine.
      if (!isUniqueViolation(error) && (error as { code?: string }).code !== "42P06") throw error;
    }
  }
  const migrator = new Migrator({
    db: handle.dialect === "postgres" ? withOneSchemaIntrospection(handle.db, schema ?? "public") : handle.db,
    provider: createMigrationProvider(handle.dialect),
    ...(handle.dialect === "postgres" ? { migrationTableSchema: schema ?? "public" } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return;
    const racing =
      handle.dialect === "sqlite" &&
      SQLITE_MESSAGES.alreadyExists.test(String((error as Error).message)) &&
      attempt < 50;
    if (racing) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(
      `Database migration ${failed ?? ""} failed: ${error instanceof Error ? error.message : inspect(error)}`,
    );
  }
}

/**
 * The Kysely instance with an introspection that sees only `schema`, for the migrator. Kysely's own
 * PostgreSQL introspection lists the tables of every schema, calling has_schema_privilege on each,
 * and PostgreSQL raises invalid_schema_name (3F000) when another schema is dropped during that scan
 * (other tenants, parallel test suites): an instance would fail to start for someone else's DDL.
 * The migrator only asks whether its schema and its two tables exist; these catalog reads answer
 * exactly that and call no privilege function.
 */
function withOneSchemaIntrospection(db: Kysely<Database>, schema: string): Kysely<Database> {
  const getTables = async (): Promise<TableMetadata[]> => {
    const { rows } = await sql<{ name: string }>`
      select c.relname as name from pg_catalog.pg_class c
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relkind in ('r', 'p')`.execute(db);
    return rows.map((row) => ({ name: row.name, schema, isView: false, columns: [] }));
  };
  const introspection: DatabaseIntrospector = {
    getSchemas: async () =>
      (
        await sql<{
          name: string;
        }>`select nspname as name from pg_catalog.pg_namespace where nspname = ${schema}`.execute(db)
      ).rows,
    getTables,
    getMetadata: async () => ({ tables: await getTables() }),
  };
  return new Proxy(db, {
    get(target, property) {
      if (property === "introspection") return introspection;
      const value: unknown = Reflect.get(target, property, target);
      // Kysely's getters and methods use private fields: run them on the instance itself.
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
