import type { Kysely } from "kysely";
import type { Logger } from "pino";

import { deleteInBatches } from "../db/prune-expired.js";
import type { Database } from "../db/schema.js";
import { RefreshTokenStore } from "./refresh-token.store.js";
import { SessionStore } from "./session.store.js";

/** Sessions deleted per transaction by {@link pruneEndedSessions}. */
export const PRUNE_BATCH = 500;
/** Batches per run of {@link pruneEndedSessions}; what is left goes on the next run. */
export const PRUNE_MAX_BATCHES = 40;

/**
 * Deletes the sessions that ended (or expired) before `cutoff`, with their refresh tokens, in batches of
 * {@link PRUNE_BATCH} (at most {@link PRUNE_MAX_BATCHES} a run, letting other work in between), so
 * that every login's session and refresh token rows do not stay forever: what a user's logins leave
 * on disk is what LOGIN_MAX_PER_USER lets in within the retention. Returns how many went; a failure
 * is logged and retried on the next run.
 */
export async function pruneEndedSessions(db: Kysely<Database>, cutoff: Date, logger: Logger): Promise<number> {
  let deleted = 0;
  try {
    for (let batch = 0; batch < PRUNE_MAX_BATCHES; batch++) {
      const n = await db.transaction().execute(async (trx) => {
        const ids = await new SessionStore(trx).endedBefore(cutoff, PRUNE_BATCH);
        await new RefreshTokenStore(trx).deleteOfSessions(ids);
        await new SessionStore(trx).delete(ids);
        return ids.length;
      });
      deleted += n;
      if (n < PRUNE_BATCH) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (error) {
    logger.warn({ err: error }, "pruning ended sessions failed; retrying on the next run");
  }
  if (deleted > 0) logger.info({ deleted, before: cutoff.toISOString() }, "ended sessions pruned");
  return deleted;
}

/**
 * Deletes the spent (rotated) refresh tokens rotated before `cutoff`, live sessions' included, in
 * batches of `batch` rows (default {@link PRUNE_BATCH}; at most `maxBatches` a run, default
 * {@link PRUNE_MAX_BATCHES}): every refresh of a live
 * session spends a token and adds one, and without this a session in use would keep them all for
 * its whole lifetime. Returns how many went; a failure is logged and retried on the next run.
 */
export async function pruneSpentRefreshTokens(
  db: Kysely<Database>,
  cutoff: Date,
  logger: Logger,
  batch = PRUNE_BATCH,
  maxBatches = PRUNE_MAX_BATCHES,
): Promise<number> {
  let deleted = 0;
  try {
    const tokens = new RefreshTokenStore(db);
    deleted = await deleteInBatches((limit) => tokens.deleteSpentBefore(cutoff, limit), batch, maxBatches);
  } catch (error) {
    logger.warn({ err: error }, "pruning spent refresh tokens failed; retrying on the next run");
  }
  if (deleted > 0) logger.info({ deleted, before: cutoff.toISOString() }, "spent refresh tokens pruned");
  return deleted;
}
