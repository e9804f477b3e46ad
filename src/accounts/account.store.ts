import { RevocationStore } from "../access/revocation.store.js";
import { containsNul } from "../db/database.js";
import type { UserStore } from "../users/index.js";

/** What deleting an account removed. */
export interface DeletedAccount {
  /** The sessions and API tokens that were still live: every instance must refuse their tokens. */
  liveSessionIds: string[];
  liveApiTokenIds: string[];
  posts: number;
}

/**
 * The named cross-table writer: the one place that deletes an account, because it spans every table
 * holding the user's data. Posts, sessions with their refresh tokens, API tokens and the user row go
 * in one transaction (the only writes to those tables outside their own stores), and the live
 * credentials among them are tombstoned by access/revocation.store.ts in the same transaction, so
 * other instances learn of them (RevocationSync) even though their rows are gone. Audit events stay.
 */
export class AccountStore {
  /**
   * `tombstoneRetentionMs` is the revocation list's window (the access-token lifetime and leeway):
   * a tombstone must outlive every access token of the session it stands for, however long
   * JWT_ACCESS_TOKEN_EXPIRES makes them. Older ones are pruned.
   */
  constructor(
    private readonly users: UserStore,
    private readonly tombstoneRetentionMs: number,
  ) {}

  /**
   * Deletes the user and everything they own, unless they are the last active ADMIN
   * ("last-admin"); "not-found" when there is no such user. Nothing changes unless all of it does.
   */
  async delete(userId: string, now: Date): Promise<DeletedAccount | "not-found" | "last-admin"> {
    if (containsNul(userId)) return "not-found";
    // Serialised with every other change that may remove the last admin (setRoles, setDisabled).
    return this.users.lastAdminTransaction(async (trx) => {
      const status = await this.users.adminStatus(trx, userId);
      if (status === "not-found" || status === "last-admin") return status;
      const at = now.toISOString();
      const liveSessions = await trx
        .selectFrom("sessions")
        .select("id")
        .where("user_id", "=", userId)
        .where("revoked_at", "is", null)
        .where("expires_at", ">", at)
        .execute();
      const liveApiTokens = await trx
        .selectFrom("api_tokens")
        .select("id")
        .where("user_id", "=", userId)
        .where("revoked_at", "is", null)
        .where("expires_at", ">", at)
        .execute();
      await new RevocationStore(trx).recordDeleted(
        { sessionIds: liveSessions.map(({ id }) => id), apiTokenIds: liveApiTokens.map(({ id }) => id) },
        now,
        new Date(now.getTime() - this.tombstoneRetentionMs),
      );
      await trx
        .deleteFrom("refresh_tokens")
        .where("session_id", "in", (eb) => eb.selectFrom("sessions").select("id").where("user_id", "=", userId))
        .execute();
      await trx.deleteFrom("sessions").where("user_id", "=", userId).execute();
      await trx.deleteFrom("api_tokens").where("user_id", "=", userId).execute();
      const posts = await trx.deleteFrom("posts").where("author_id", "=", userId).executeTakeFirst();
      await trx.deleteFrom("users").where("id", "=", userId).execute();
      return {
        liveSessionIds: liveSessions.map(({ id }) => id),
        liveApiTokenIds: liveApiTokens.map(({ id }) => id),
        posts: Number(posts.numDeletedRows),
      };
    });
  }
}
