import type { Kysely, Selectable } from "kysely";

import { containsNul } from "../db/database.js";
import { type Database, type SessionsTable, toDate } from "../db/schema.js";
import { SESSION_FIELD_LIMITS } from "./session.type.js";

/** Why a session ended; stored with it and logged. */
export type SessionEndReason =
  | "logout"
  | "logout_others"
  | "revoked"
  | "revoked_by_admin"
  | "refresh_token_reused"
  | "password_changed"
  | "account_disabled"
  | "account_deleted";

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
}

/** The only code that reads or writes the `sessions` table. */
export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a new session (one per login or registration); its id becomes the tokens' `sid`. */
  async create(session: {
    id: string;
    userId: string;
    now: Date;
    expiresAt: Date;
    chainKey: string;
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
        user_agent: session.userAgent?.slice(0, SESSION_FIELD_LIMITS.userAgent) ?? null,
        ip: session.ip?.slice(0, SESSION_FIELD_LIMITS.ip) ?? null,
        chain_key: session.chainKey,
      })
      .execute();
  }

  async findById(id: string): Promise<SessionRecord | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db.selectFrom("sessions").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** A user's sessions that have neither ended nor expired, newest first. */
  async listActive(userId: string, now: Date): Promise<SessionRecord[]> {
    const rows = await this.db
      .selectFrom("sessions")
      .selectAll()
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", now.toISOString())
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
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
  };
}
