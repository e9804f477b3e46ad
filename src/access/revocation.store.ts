import type { Kysely } from "kysely";

import { type Database, toDate } from "../db/schema.js";
import { parseRoles, type Role } from "./roles.js";

/** A session or API token that was revoked, when, and the reason stored with it (`revoked_reason`). */
export interface Revoked {
  id: string;
  revokedAt: Date;
  reason: string | null;
}

/**
 * The revocation list's store, a named cross-table reader: it reads what the list is built from,
 * sessions that ended, API tokens revoked and users whose roles changed since a moment, from the
 * tables their features' stores own and write (session.store.ts, api-token.store.ts, user.store.ts),
 * so that access/ depends on the tables and not on the features above it. It owns one table,
 * `revoked_credentials`: the tombstones of a deleted account's live credentials.
 */
export class RevocationStore {
  constructor(private readonly db: Kysely<Database>) {}

  sessionsEndedSince(since: Date): Promise<Revoked[]> {
    return this.revokedSince("sessions", since);
  }

  apiTokensRevokedSince(since: Date): Promise<Revoked[]> {
    return this.revokedSince("api_tokens", since);
  }

  /** Sessions and API tokens of deleted accounts (their rows are gone; tombstones remain). */
  async credentialsDeletedSince(since: Date): Promise<Revoked[]> {
    const rows = await this.db
      .selectFrom("revoked_credentials")
      .select(["id", "revoked_at"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at), reason: "account_deleted" }));
  }

  /** The rows of a table with an `id`, a `revoked_at` and a `revoked_reason` that were revoked after `since`. */
  private async revokedSince(table: "sessions" | "api_tokens", since: Date): Promise<Revoked[]> {
    const rows = await this.db
      .selectFrom(table)
      .select(["id", "revoked_at", "revoked_reason"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at!), reason: row.revoked_reason }));
  }

  /**
   * Writes tombstones for a deleted account's live sessions and API tokens (their rows are going, so
   * {@link credentialsDeletedSince} is how other instances learn of them), and deletes those revoked
   * before `pruneBefore`. Run in the deletion's transaction.
   */
  async recordDeleted(
    deleted: { sessionIds: readonly string[]; apiTokenIds: readonly string[] },
    at: Date,
    pruneBefore: Date,
  ): Promise<void> {
    const revoked_at = at.toISOString();
    const tombstones = [
      ...deleted.sessionIds.map((id) => ({ id, kind: "session" as const, revoked_at })),
      ...deleted.apiTokenIds.map((id) => ({ id, kind: "api_token" as const, revoked_at })),
    ];
    if (tombstones.length > 0) await this.db.insertInto("revoked_credentials").values(tombstones).execute();
    await this.db.deleteFrom("revoked_credentials").where("revoked_at", "<", pruneBefore.toISOString()).execute();
  }

  async rolesChangedSince(since: Date): Promise<Array<{ id: string; roles: Role[]; changedAt: Date }>> {
    const rows = await this.db
      .selectFrom("users")
      .select(["id", "roles", "roles_changed_at"])
      .where("roles_changed_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({
      id: row.id,
      roles: parseRoles(JSON.parse(row.roles)) ?? [],
      changedAt: toDate(row.roles_changed_at!),
    }));
  }
}
