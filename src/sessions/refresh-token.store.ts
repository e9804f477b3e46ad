import type { Kysely } from "kysely";

import { type Database, toDate } from "../db/schema.js";

/** A stored refresh token: its id, its session, and when it was exchanged for its successor. */
export interface RefreshTokenRecord {
  id: string;
  sessionId: string;
  rotatedAt: Date | null;
}

/**
 * The only code that reads or writes the `refresh_tokens` table, but for deleting an account
 * (accounts/account.store.ts). Tokens are stored as hashes.
 */
export class RefreshTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(token: { id: string; sessionId: string; tokenHash: string; now: Date }): Promise<void> {
    await this.db
      .insertInto("refresh_tokens")
      .values({
        id: token.id,
        session_id: token.sessionId,
        token_hash: token.tokenHash,
        created_at: token.now.toISOString(),
        rotated_at: null,
      })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const row = await this.db
      .selectFrom("refresh_tokens")
      .select(["id", "session_id", "rotated_at"])
      .where("token_hash", "=", tokenHash)
      .executeTakeFirst();
    return (
      row && {
        id: row.id,
        sessionId: row.session_id,
        rotatedAt: row.rotated_at === null ? null : toDate(row.rotated_at),
      }
    );
  }

  /**
   * Marks a token as exchanged, only if nobody did before: an atomic compare-and-set, so of two
   * concurrent refreshes with one token exactly one gets `true`.
   */
  async markRotated(id: string, now: Date): Promise<boolean> {
    const result = await this.db
      .updateTable("refresh_tokens")
      .set({ rotated_at: now.toISOString() })
      .where("id", "=", id)
      .where("rotated_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /**
   * Deletes up to `limit` spent tokens rotated before `cutoff`: their ids are read through
   * refresh_tokens_spent_idx (which holds only spent ones), then deleted by primary key (a list of
   * ids, so that no plan scans the table to join them); returns how many. A session's current
   * token (never rotated) is never among them, and a spent one never becomes current again.
   */
  async deleteSpentBefore(cutoff: Date, limit: number): Promise<number> {
    const spent = await this.db
      .selectFrom("refresh_tokens")
      .select("id")
      .where("rotated_at", "is not", null)
      .where("rotated_at", "<", cutoff.toISOString())
      .limit(limit)
      .execute();
    if (spent.length === 0) return 0;
    const ids = spent.map((row) => row.id);
    const result = await this.db.deleteFrom("refresh_tokens").where("id", "in", ids).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Deletes every refresh token of these sessions (through the session_id index). */
  async deleteOfSessions(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length > 0)
      await this.db.deleteFrom("refresh_tokens").where("session_id", "in", sessionIds).execute();
  }
}
