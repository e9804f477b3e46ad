import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import pg from "pg";

import { type DatabaseHandle, migrateToLatest, openDatabase } from "../../src/db/database.js";

export type DatabaseKind = "sqlite" | "postgres";

const postgresUrl = process.env.TEST_DATABASE_URL || undefined;

if (process.env.CI === "true" && !postgresUrl) {
  // In CI the PostgreSQL suites must run: a missing URL is a broken pipeline, not a reason to skip.
  throw new Error("CI=true but TEST_DATABASE_URL is not set: the PostgreSQL suites cannot run");
}

/** SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (then an unreachable server fails the suite). */
export const DATABASES: readonly DatabaseKind[] = postgresUrl ? ["sqlite", "postgres"] : ["sqlite"];

/** A fresh, empty database for one suite: the env it needs and how to remove it. */
export interface TestDatabase {
  env: Record<string, string>;
  dataDir: string;
  drop(): Promise<void>;
}

/**
 * SQLite: a new temporary DATA_DIR. PostgreSQL: a new schema in TEST_DATABASE_URL's database
 * (DATABASE_SCHEMA), so suites never see each other's rows and can run in any order or in parallel.
 */
export function createTestDatabase(kind: DatabaseKind): TestDatabase {
  const dataDir = mkdtempSync(join(tmpdir(), "gta-test-"));
  if (kind === "sqlite") {
    return { env: { DATA_DIR: dataDir }, dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const schema = `test_${randomBytes(6).toString("hex")}`;
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: postgresUrl!, DATABASE_SCHEMA: schema },
    dataDir,
    drop: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      const client = new pg.Client({ connectionString: postgresUrl });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A fresh test database of `kind` opened straight through the data layer (no app) and migrated to
 * the latest schema, for suites that test a store or a plan on their own. Close the handle, then drop the database.
 */
export async function openMigratedDatabase(
  kind: DatabaseKind,
): Promise<{ database: TestDatabase; handle: DatabaseHandle }> {
  const database = createTestDatabase(kind);
  const handle = openDatabase(
    {
      dataDir: database.dataDir,
      databaseTimeoutMs: 10_000,
      databaseUrl: database.env.DATABASE_URL,
      databaseSchema: database.env.DATABASE_SCHEMA,
    },
    { warn: () => undefined, info: () => undefined },
  );
  await migrateToLatest(handle, database.env.DATABASE_SCHEMA);
  return { database, handle };
}
