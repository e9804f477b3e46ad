// Kysely's migrator lists the tables of every schema (has_schema_privilege on each), and PostgreSQL
// raises invalid_schema_name (3F000) when another schema is dropped during that scan: instances
// starting while other tenants' schemas come and go (or test suites in parallel) must still start.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import pg from "pg";
import pino from "pino";

import { migrateToLatest, openDatabase } from "../../src/db/database.js";
import { loadConfig } from "../../src/load-config.js";
import { TEST_SECRET } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const url = process.env.TEST_DATABASE_URL;

describe("PostgreSQL migrations while other schemas are dropped", { skip: !DATABASES.includes("postgres") }, () => {
  it("migrates 20 fresh schemas while another connection creates and drops schemas as fast as it can", async (t) => {
    const churn = new pg.Client({ connectionString: url });
    await churn.connect();
    let running = true;
    let dropped = 0;
    const loop = (async () => {
      while (running) {
        const names = Array.from({ length: 5 }, () => `churn_${randomBytes(5).toString("hex")}`);
        for (const name of names) await churn.query(`create schema "${name}"`);
        for (const name of names) await churn.query(`drop schema "${name}"`);
        dropped += names.length;
      }
    })();
    const schemas: string[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const schema = `test_mig_${randomBytes(5).toString("hex")}`;
        schemas.push(schema);
        const config = loadConfig(
          { NODE_ENV: "test", JWT_SECRET_KEY: TEST_SECRET, DATABASE_URL: url!, DATABASE_SCHEMA: schema },
          process.cwd(),
        );
        const handle = openDatabase(config, pino({ level: "silent" }));
        try {
          await migrateToLatest(handle, schema);
          const tables = await churn.query<{ table_name: string }>(
            "select table_name from information_schema.tables where table_schema = $1 order by table_name",
            [schema],
          );
          assert.ok(
            tables.rows.some((r) => r.table_name === "users"),
            `schema ${schema} has its tables: ${JSON.stringify(tables.rows)}`,
          );
        } finally {
          await handle.close();
        }
      }
    } finally {
      running = false;
      await loop;
      for (const schema of schemas) await churn.query(`drop schema if exists "${schema}" cascade`);
      await churn.end();
    }
    t.diagnostic(`20 migrations while ${dropped} other schemas were created and dropped`);
  });
});
