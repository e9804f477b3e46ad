import type { Kysely } from "kysely";

import { type Database, toDate } from "../db/schema.js";
import { type Role, parseRoles } from "./roles.js";

/**
 * The reads the revocation list is built from: sessions that ended, API tokens revoked, credentials
 * of deleted accounts and users whose roles changed, since a moment. Owned here rather than by the session and user stores, so that access/
 * depends on the tables and not on the features that write them.
 */
/** A session or API token that was revoked, and when. */
export interface Revoked {
  id: string;
  revokedAt: Date;
}

export class RevocationStore {
  constructor(private readonly db: Kysely<Database>) {}

  sessionsEndedSince(since: Date): Promise<Revoked[]> {
    return this.revokedSince("sessions", since);
  }

  apiTokensRevokedSince(since: Date): Promise<Revoked[]> {
    return this.revokedSince("api_tokens", since);
  }

  /** Sessions and API tokens of deleted accounts (their rows are gone; tombstones remain). */
  credentialsDeletedSince(since: Date): Promise<Revoked[]> {
    return this.revokedSince("revoked_credentials", since);
  }

  /** The rows of a table with an `id` and a `revoked_at` that were revoked after `since`. */
  private async revokedSince(
    table: "sessions" | "api_tokens" | "revoked_credentials",
    since: Date,
  ): Promise<Revoked[]> {
    const rows = await this.db
      .selectFrom(table)
      .select(["id", "revoked_at"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at!) }));
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
