import { type Kysely, type Selectable, sql } from "kysely";

import { type Assurance, type AuthMethod, parseAmr } from "../access/assurance.js";
import { containsNul } from "../db/database.js";
import { keysetPage } from "../db/keyset.js";
import { type Database, type SessionsTable, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import { SESSION_FIELD_LIMITS } from "./session.type.js";

/** Why a session ended; stored with it, logged, and the `cause` label of gta_sessions_ended_total. */
export const SESSION_END_REASONS = [
  "logout",
  "logout_others",
  "revoked",
  "revoked_by_admin",
  "refresh_token_reused",
  "password_changed",
  "account_disabled",
  "account_deleted",
  // A new session of the user ended their least recently used one past SESSIONS_MAX_PER_USER.
  "session_limit",
  // resetPassword ended every session of the user; verifyEmail of a changed address the others.
  "password_reset",
  "email_changed",
  // A first second factor was added (the user's other, password-only sessions end), one was removed
  // (the other sessions end), or an ADMIN's resetUserMfa removed them all (every session ends).
  "mfa_enrolled",
  "mfa_removed",
  "mfa_reset",
] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

/**
 * `userAgent` cut to `SESSION_FIELD_LIMITS.userAgent` (256) code points, so that a cut never
 * splits a surrogate pair: a client chooses it, and every login stores it.
 */
export function storedUserAgent(userAgent: string | undefined): string | null {
  if (userAgent === undefined) return null;
  const max = SESSION_FIELD_LIMITS.userAgent;
  // Cheap test first: a string of at most `max` UTF-16 units has at most `max` code points.
  if (userAgent.length <= max) return userAgent;
  return Array.from(userAgent.slice(0, max * 2))
    .slice(0, max)
    .join("");
}

export interface SessionRecord {
  id: string;
  userId: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
  revokedAt: Date | null;
  revokedReason: string | null;
  /** The key its refresh tokens are derived with; null for sessions older than migration 0004. */
  chainKey: string | null;
  /** How the session was proven, and whether it still owes its user's second factor. */
  assurance: Assurance;
}

/**
 * The only code that reads or writes the `sessions` table, but for two named cross-table ones:
 * deleting an account (accounts/account.store.ts) and the revocation list's reads
 * (access/revocation.store.ts).
 */
export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a new session (one per login or registration); its id becomes the tokens' `sid`. */
  async create(session: {
    id: string;
    userId: string;
    now: Date;
    expiresAt: Date;
    chainKey: string;
    assurance: Assurance;
    userAgent?: string;
    ip?: string;
  }): Promise<void> {
    await this.db
      .insertInto("sessions")
      .values({
        id: session.id,
        user_id: session.userId,
        created_at: session.now.toISOString(),
        last_used_at: session.now.toISOString(),
        expires_at: session.expiresAt.toISOString(),
        user_agent: storedUserAgent(session.userAgent),
        ip: session.ip?.slice(0, SESSION_FIELD_LIMITS.ip) ?? null,
        chain_key: session.chainKey,
        aal: session.assurance.aal,
        amr: session.assurance.amr.join(" "),
        mfa_pending: session.assurance.mfaPending ? 1 : 0,
      })
      .execute();
  }

  /**
   * Raises a live session to AAL2 with `method` added to its methods and its second factor no longer
   * owed and, with `chainKey`, a new chain key (its refresh tokens are then replaced by the caller,
   * in the same transaction). One conditional write, `amr` extended in SQL (so that two factors
   * proven at once both stay): undefined when the session has ended or expired meanwhile.
   */
  async raise(
    id: string,
    method: AuthMethod,
    chainKey: string | undefined,
    now: Date,
  ): Promise<SessionRecord | undefined> {
    if (containsNul(id)) return undefined;
    // The methods are space-separated words: `method` is added unless it is one of them already.
    const amr = sql<string>`case when (' ' || amr || ' ') like ${`% ${method} %`} then amr else amr || ' ' || ${method} end`;
    const row = await this.db
      .updateTable("sessions")
      .set({ aal: 2, amr, mfa_pending: 0, ...(chainKey ? { chain_key: chainKey } : {}) })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", now.toISOString())
      .returningAll()
      .executeTakeFirst();
    return row && toRecord(row);
  }

  async findById(id: string): Promise<SessionRecord | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db.selectFrom("sessions").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * A page of a user's sessions that have neither ended nor expired, newest first, read through
   * sessions_user_live_idx: after the session `page.after` (one of the user's, live or not) when
   * given, else skipping `page.offset`. Undefined when the user has no session with the id `after`.
   */
  async listActive(userId: string, now: Date, page: Page): Promise<SessionRecord[] | undefined> {
    let after: { created_at: Date | string; id: string } | undefined;
    if (page.after !== undefined) {
      if (containsNul(page.after)) return undefined;
      after = await this.db
        .selectFrom("sessions")
        .select(["created_at", "id"])
        .where("id", "=", page.after)
        .where("user_id", "=", userId)
        .executeTakeFirst();
      if (!after) return undefined;
    }
    const live = this.db
      .selectFrom("sessions")
      .selectAll()
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", now.toISOString());
    const rows = await keysetPage(live, page, after && { at: after.created_at, id: after.id }, {
      column: "created_at",
      direction: "desc",
    }).execute();
    return rows.map(toRecord);
  }

  /** Ends one session; false when it had already ended. */
  async revoke(id: string, reason: SessionEndReason, now: Date): Promise<boolean> {
    if (containsNul(id)) return false;
    const result = await this.db
      .updateTable("sessions")
      .set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Ends every live session of a user, except `keep` when given; returns the ids it ended. */
  async revokeAllOf(userId: string, reason: SessionEndReason, now: Date, keep?: string): Promise<string[]> {
    const rows = await this.db
      .updateTable("sessions")
      .set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .$if(keep !== undefined, (q) => q.where("id", "!=", keep!))
      .returning("id")
      .execute();
    return rows.map((r) => r.id);
  }

  /**
   * Ends the user's live sessions past the `keep` most recently used ones (last refreshed, or
   * started), with reason "session_limit", and returns their ids. At most 1,000 are ended per call
   * (only a lowered SESSIONS_MAX_PER_USER leaves more than one to end).
   */
  async endLeastRecentlyUsed(userId: string, keep: number, now: Date): Promise<string[]> {
    const at = now.toISOString();
    const live = await this.db
      .selectFrom("sessions")
      .select("id")
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", at)
      .orderBy(sql`coalesce(last_used_at, created_at)`, "desc")
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .limit(keep + 1000)
      .execute();
    const beyond = live.slice(keep).map((row) => row.id);
    if (beyond.length === 0) return [];
    const ended = await this.db
      .updateTable("sessions")
      .set({ revoked_at: at, revoked_reason: "session_limit" })
      .where("id", "in", beyond)
      .where("revoked_at", "is", null)
      .returning("id")
      .execute();
    return ended.map((row) => row.id);
  }

  /**
   * Up to `limit` sessions that ended before `cutoff`: ended explicitly (through the revoked_at
   * index) or past their absolute lifetime without ever being ended (through sessions_expires_at_idx,
   * whatever a late revoke wrote since: they could not be used after expiring). The ones to delete.
   */
  async endedBefore(cutoff: Date, limit: number): Promise<string[]> {
    const at = cutoff.toISOString();
    const ended = await this.db
      .selectFrom("sessions")
      .select("id")
      .where("revoked_at", "is not", null)
      .where("revoked_at", "<", at)
      .limit(limit)
      .execute();
    const ids = new Set(ended.map((row) => row.id));
    if (ids.size < limit) {
      const expired = await this.db
        .selectFrom("sessions")
        .select("id")
        .where("expires_at", "<", at)
        .limit(limit)
        .execute();
      for (const row of expired) if (ids.size < limit) ids.add(row.id);
    }
    return [...ids];
  }

  /** Deletes these sessions; their refresh tokens must have gone first (`RefreshTokenStore.deleteOfSessions`). */
  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.db.deleteFrom("sessions").where("id", "in", ids).execute();
  }

  /** Records that the session was just used to refresh. */
  async touch(id: string, now: Date): Promise<void> {
    await this.db.updateTable("sessions").set({ last_used_at: now.toISOString() }).where("id", "=", id).execute();
  }
}

function toRecord(row: Selectable<SessionsTable>): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: toDate(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
    expiresAt: toDate(row.expires_at),
    userAgent: row.user_agent,
    ip: row.ip,
    revokedAt: row.revoked_at === null ? null : toDate(row.revoked_at),
    revokedReason: row.revoked_reason,
    chainKey: row.chain_key,
    assurance: {
      aal: row.aal === 2 ? 2 : 1,
      amr: parseAmr(row.amr),
      mfaPending: Number(row.mfa_pending) === 1,
    },
  };
}
