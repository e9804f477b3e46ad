// Kysely's migration guide types migrations as Kysely<any>: a step sees the database as it was when
// the step was written, not as today's schema.ts describes it.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { type Kysely, type Migration, sql } from "kysely";

/**
 * 0011: the indexes the retention chores read through (issue 28), so that each batch finds its
 * rows without scanning a table that grows with every login and refresh. Spent refresh tokens are
 * found by when they were rotated, in an index of spent tokens only (a session's current token,
 * never rotated, stays out of it); sessions past their absolute lifetime by their expiry. Plain
 * CREATE INDEX in the migration's transaction, as in 0008 (migrations.ts says why not
 * CONCURRENTLY): a large deployment builds them beforehand under these names and `if not exists`
 * skips them (docs/operations.md).
 */
export function retentionIndexes(): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createIndex("refresh_tokens_spent_idx")
        .ifNotExists()
        .on("refresh_tokens")
        .column("rotated_at")
        .where(sql.ref("rotated_at"), "is not", null)
        .execute();
      await db.schema
        .createIndex("sessions_expires_at_idx")
        .ifNotExists()
        .on("sessions")
        .column("expires_at")
        .execute();
    },
  };
}
