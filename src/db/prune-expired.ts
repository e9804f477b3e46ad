import type { Kysely } from "kysely";

import type { Database } from "./schema.js";

/** Rows deleted per statement by {@link deleteExpired}. */
export const PRUNE_BATCH = 500;
/** Statements per run of {@link deleteExpired}; what is left goes on the next run. */
export const PRUNE_MAX_BATCHES = 40;

/**
 * Runs `deleteBatch` (which deletes at most `limit` rows in one short statement or transaction and
 * returns how many) until it deletes fewer than `batch`, at most `maxBatches` times, yielding to the
 * event loop between batches: no run holds a long lock or starves requests, and what is left goes on
 * the next run. Returns how many rows went.
 */
export async function deleteInBatches(
  deleteBatch: (limit: number) => Promise<number>,
  batch = PRUNE_BATCH,
  maxBatches = PRUNE_MAX_BATCHES,
): Promise<number> {
  let deleted = 0;
  for (let run = 0; run < maxBatches; run += 1) {
    const n = await deleteBatch(batch);
    deleted += n;
    if (n < batch) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return deleted;
}

/** The tables of single-use secrets that expire: each has an `id` and an indexed `expires_at`. */
export type ExpiringTable = "email_tokens" | "webauthn_challenges";

/**
 * Deletes the rows of `table` that expired by `now` (spent or not), through its expires_at index,
 * {@link PRUNE_BATCH} at a time and at most {@link PRUNE_MAX_BATCHES} batches a run. Called by the
 * table's own store (its owner), for its housekeeping. Returns how many went.
 */
export async function deleteExpired(db: Kysely<Database>, table: ExpiringTable, now: Date): Promise<number> {
  // Both tables have `id` and `expires_at` of the same types: one of them names the query's shape.
  const rows = table as "email_tokens";
  let deleted = 0;
  for (let batch = 0; batch < PRUNE_MAX_BATCHES; batch += 1) {
    const ids = await db
      .selectFrom(rows)
      .select("id")
      .where("expires_at", "<=", now.toISOString())
      .limit(PRUNE_BATCH)
      .execute();
    if (ids.length === 0) break;
    await db
      .deleteFrom(rows)
      .where(
        "id",
        "in",
        ids.map((row) => row.id),
      )
      .execute();
    deleted += ids.length;
    if (ids.length < PRUNE_BATCH) break;
  }
  return deleted;
}
