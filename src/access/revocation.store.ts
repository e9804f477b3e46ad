import type { Kysely } from "kysely";

import { type Database, toDate } from "../db/schema.js";
import { type Role, parseRoles } from "./roles.js";

/**
 * The reads the revocation list is built from: sessions that ended, API tokens revoked, credentials
 * of deleted accounts and users whose roles changed, since a moment. Owned here rather than by the session and user stores, so that access/
 * depends on the tables and not on the features that write them.
 */
export class RevocationStore {
  constructor(private readonly db: Kysely<Database>) {}

  async sessionsEndedSince(since: Date): Promise<Array<{ id: string; revokedAt: Date }>> {
    const rows = await this.db
      .selectFrom("sessions")
      .select(["id", "revoked_at"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at!) }));
  }

  async apiTokensRevokedSince(since: Date): Promise<Array<{ id: string; revokedAt: Date }>> {
    const rows = await this.db
      .selectFrom("api_tokens")
      .select(["id", "revoked_at"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at!) }));
  }

  /** Sessions and API tokens of deleted accounts (their rows are gone; tombstones remain). */
  async credentialsDeletedSince(since: Date): Promise<Array<{ id: string; revokedAt: Date }>> {
    const rows = await this.db
      .selectFrom("revoked_credentials")
      .select(["id", "revoked_at"])
      .where("revoked_at", ">", since.toISOString())
      .execute();
    return rows.map((row) => ({ id: row.id, revokedAt: toDate(row.revoked_at) }));
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
