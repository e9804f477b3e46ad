// Query plans read from the database itself, for the plan suites of test/db/: a migrated test
// database, a Kysely on its connection that records every query it runs, and the plan of a
// recorded query. SQLite: EXPLAIN QUERY PLAN. PostgreSQL: EXPLAIN with sequential scans, bitmap
// scans and sorts priced out, so the plan shows whether an index can serve the query in order (on
// small test tables the planner would otherwise rightly read them whole).
import assert from "node:assert/strict";

import { type CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from "kysely";

import type { DatabaseHandle } from "../../src/db/database.js";
import type { Database } from "../../src/db/schema.js";
import { type DatabaseKind, openMigratedDatabase } from "./databases.js";

export interface PlanDatabase {
  handle: DatabaseHandle;
  /** The same connection as `handle.db`, recording each query it runs. */
  logged: Kysely<Database>;
  /**
   * The plan, one line per node, of the last query `run` made through `logged` (or of the last one
   * whose SQL `pick` accepts).
   */
  planOf(run: () => Promise<unknown>, pick?: (sql: string) => boolean): Promise<string[]>;
  close(): Promise<void>;
}

export async function openPlanDatabase(kind: DatabaseKind): Promise<PlanDatabase> {
  const { database, handle } = await openMigratedDatabase(kind);
  let recorded: CompiledQuery[] = [];
  const logged = new Kysely<Database>({
    dialect:
      "pool" in handle.driver
        ? new PostgresDialect({ pool: handle.driver.pool })
        : new SqliteDialect({ database: handle.driver.sqlite }),
    log: (event) => {
      if (event.level === "query") recorded.push(event.query);
    },
  });
  const explain = async (query: CompiledQuery): Promise<string[]> => {
    if ("sqlite" in handle.driver) {
      const rows = handle.driver.sqlite.prepare(`explain query plan ${query.sql}`).all(...query.parameters) as Array<{
        detail: string;
      }>;
      return rows.map((row) => row.detail);
    }
    const client = await handle.driver.pool.connect();
    try {
      await client.query("begin");
      for (const setting of ["enable_seqscan", "enable_bitmapscan", "enable_sort"])
        await client.query(`set local ${setting} = off`);
      const { rows } = await client.query<{ "QUERY PLAN": string }>(
        `explain (costs off) ${query.sql}`,
        query.parameters as unknown[],
      );
      return rows.map((row) => row["QUERY PLAN"]);
    } finally {
      await client.query("rollback");
      client.release();
    }
  };
  return {
    handle,
    logged,
    async planOf(run, pick = () => true) {
      recorded = [];
      await run();
      const query = recorded.filter((q) => pick(q.sql)).at(-1);
      if (!query)
        throw new Error(
          `no query recorded${recorded.length ? `; got: ${recorded.map((q) => q.sql).join(" | ")}` : ""}`,
        );
      return explain(query);
    },
    async close() {
      await handle.close();
      await database.drop();
    },
  };
}

/**
 * Every access to `table` in the plan is a seek or ordered scan of `index`, and nothing is sorted
 * (SQLite) or only the page rows (PostgreSQL's LATERAL, whose outer Sort merges the authors' pages).
 */
export function assertReadsThrough(
  kind: DatabaseKind,
  plan: string[],
  table: string,
  index: string,
  direction: "newest" | "oldest",
): void {
  const text = plan.join("\n");
  if (kind === "sqlite") {
    const accesses = plan.filter((line) => new RegExp(`^(SCAN|SEARCH) ${table}\\b`).test(line));
    assert.ok(accesses.length > 0, text);
    for (const line of accesses) assert.match(line, new RegExp(`USING (COVERING )?INDEX ${index}\\b`), text);
    assert.doesNotMatch(text, /TEMP B-TREE/, text);
  } else {
    const scan = direction === "newest" ? "Index (Only )?Scan Backward" : "Index (Only )?Scan";
    assert.match(text, new RegExp(`${scan} using ${index} on ${table}`), text);
    assert.doesNotMatch(text, /Seq Scan|Bitmap/, text);
    // Only the LATERAL join sorts, at the top: the pages it merges, never the table.
    const sorts = plan.flatMap((line, i) => (/^(\s*->\s+)?Sort$/.test(line) ? [i] : []));
    assert.ok(
      sorts.every((i) => i === 0 && text.includes("Nested Loop")),
      text,
    );
  }
}
