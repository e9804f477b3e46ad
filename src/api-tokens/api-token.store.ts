import type { Kysely } from "kysely";

import type { ApiTokenCheckRecord, ApiTokenLookup } from "../access/api-tokens.js";
import { parseRoles } from "../access/roles.js";
import type { Scope } from "../access/scopes.js";
import { parseScopes } from "../access/scopes.js";
import { keysetPage } from "../db/keyset.js";
import { type Database, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import type { UserStore } from "../users/index.js";
import type { ApiToken } from "./api-token.type.js";

/** What the service tells the store to keep of a new token: never the token, only its secret's hash. */
export interface NewApiToken {
  id: string;
  userId: string;
  name: string;
  scopes: readonly Scope[];
  secretHash: string;
  createdAt: Date;
  expiresAt: Date;
}

/** Why an API token was revoked, stored with it. */
export type ApiTokenRevokeReason = "revoked" | "revoked_by_admin" | "account_disabled" | "password_reset";

interface Row {
  id: string;
  user_id: string;
  name: string;
  scopes: string;
  created_at: Date | string;
  expires_at: Date | string;
  last_used_at: Date | string | null;
}

function toApiToken(row: Row): ApiToken & { userId: string } {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    scopes: parseScopes(JSON.parse(row.scopes)) ?? [],
    createdAt: toDate(row.created_at),
    expiresAt: toDate(row.expires_at),
    lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
  };
}

const COLUMNS = ["id", "user_id", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"] as const;

/**
 * The only code that reads or writes the api_tokens table, the bearer check's lookup included
 * (it is the {@link ApiTokenLookup} of access/api-tokens.ts). Deleting an account removes its tokens
 * in accounts/account.store.ts, and the revocation list reads revoked ones in access/revocation.store.ts.
 */
export class ApiTokenStore implements ApiTokenLookup {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Stores a new token unless the user already holds `max` live ones ("too-many"), or is gone or
   * disabled ("no-user"). On PostgreSQL `users` locks the user's row first
   * ({@link UserStore.isActiveLocked}), so concurrent creations cannot both squeeze past the limit;
   * SQLite runs one write transaction at a time anyway.
   */
  async insert(token: NewApiToken, max: number, users: UserStore): Promise<ApiToken | "too-many" | "no-user"> {
    return this.db.transaction().execute(async (trx) => {
      if (!(await users.isActiveLocked(trx, token.userId))) return "no-user";
      const live = await trx
        .selectFrom("api_tokens")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("user_id", "=", token.userId)
        .where("revoked_at", "is", null)
        .where("expires_at", ">", token.createdAt.toISOString())
        .executeTakeFirstOrThrow();
      if (Number(live.n) >= max) return "too-many";
      const row = await trx
        .insertInto("api_tokens")
        .values({
          id: token.id,
          user_id: token.userId,
          name: token.name,
          scopes: JSON.stringify(token.scopes),
          secret_hash: token.secretHash,
          created_at: token.createdAt.toISOString(),
          expires_at: token.expiresAt.toISOString(),
          last_used_at: null,
          revoked_at: null,
          revoked_reason: null,
        })
        .returning(COLUMNS)
        .executeTakeFirstOrThrow();
      return toApiToken(row);
    });
  }

  /**
   * A page of a user's live tokens (neither revoked nor expired), newest first, read through
   * api_tokens_user_live_idx: after the token `page.after` (one of the user's, live or not) when
   * given, else skipping `page.offset`. Undefined when the user has no token with the id `after`.
   */
  async listLive(userId: string, now: Date, page: Page): Promise<ApiToken[] | undefined> {
    let after: { created_at: Date | string; id: string } | undefined;
    if (page.after !== undefined) {
      if (page.after.includes("\u0000")) return undefined;
      after = await this.db
        .selectFrom("api_tokens")
        .select(["created_at", "id"])
        .where("id", "=", page.after)
        .where("user_id", "=", userId)
        .executeTakeFirst();
      if (!after) return undefined;
    }
    const live = this.db
      .selectFrom("api_tokens")
      .select(COLUMNS)
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", now.toISOString());
    const rows = await keysetPage(live, page, after && { at: after.created_at, id: after.id }, {
      column: "created_at",
      direction: "desc",
    }).execute();
    return rows.map(toApiToken);
  }

  /** One token with its owner, revoked or not; undefined when unknown. */
  async findById(id: string): Promise<(ApiToken & { userId: string; revoked: boolean }) | undefined> {
    if (id.includes("\u0000")) return undefined;
    const row = await this.db.selectFrom("api_tokens").select(COLUMNS).where("id", "=", id).executeTakeFirst();
    return row && { ...toApiToken(row), revoked: row.revoked_at !== null };
  }

  /** Revokes one token; false when it was already revoked (or does not exist). */
  async revoke(id: string, reason: ApiTokenRevokeReason, now: Date): Promise<boolean> {
    const result = await this.db
      .updateTable("api_tokens")
      .set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  /** Revokes every live token of a user; returns their ids. */
  async revokeAllOf(userId: string, reason: ApiTokenRevokeReason, now: Date): Promise<string[]> {
    const rows = await this.db
      .updateTable("api_tokens")
      .set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("expires_at", ">", now.toISOString())
      .returning("id")
      .execute();
    return rows.map((row) => row.id);
  }

  /**
   * The bearer check's one read on a cache miss: the token, with its owner's roles and whether the
   * owner is disabled joined from `users` (a read only; user.store.ts writes that table).
   */
  async findForCheck(id: string): Promise<ApiTokenCheckRecord | undefined> {
    const row = await this.db
      .selectFrom("api_tokens")
      .innerJoin("users", "users.id", "api_tokens.user_id")
      .select([
        "api_tokens.id",
        "api_tokens.user_id",
        "api_tokens.secret_hash",
        "api_tokens.scopes",
        "api_tokens.created_at",
        "api_tokens.expires_at",
        "api_tokens.revoked_at",
        "api_tokens.last_used_at",
        "users.roles",
        "users.disabled_at",
      ])
      .where("api_tokens.id", "=", id)
      .executeTakeFirst();
    return (
      row && {
        id: row.id,
        userId: row.user_id,
        secretHash: row.secret_hash,
        scopes: parseScopes(JSON.parse(row.scopes)) ?? [],
        createdAt: toDate(row.created_at),
        expiresAt: toDate(row.expires_at),
        revoked: row.revoked_at !== null,
        lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
        ownerRoles: parseRoles(JSON.parse(row.roles)) ?? [],
        ownerDisabled: row.disabled_at !== null,
      }
    );
  }

  /** Writes the token's lastUsedAt (the bearer check does, at most once per few minutes per token). */
  async recordUse(id: string, at: Date): Promise<void> {
    await this.db.updateTable("api_tokens").set({ last_used_at: at.toISOString() }).where("id", "=", id).execute();
  }
}
