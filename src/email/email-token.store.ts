import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";

import { containsNul } from "../db/database.js";
import { deleteExpired } from "../db/prune-expired.js";
import type { Database, EmailTokensTable } from "../db/schema.js";

/** What a mailed link's token is for. */
export type EmailTokenPurpose = EmailTokensTable["purpose"];

/** A live token's row, as the services need it. */
export interface EmailTokenRecord {
  id: string;
  userId: string;
  /** The address the link was sent to: for a verification, the address it verifies. */
  email: string;
}

/**
 * The only code that reads or writes `email_tokens`: the single-use tokens of reset and
 * verification links, stored as SHA-256 hashes only. Spending a token is one conditional UPDATE
 * (`used_at IS NULL AND expires_at > now`), so of any number of concurrent attempts exactly one
 * gets the row back; voiding is the same write, for every live token of a user and purpose.
 */
export class EmailTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Writes a token's hash, in the caller's transaction `trx`. */
  async insert(
    trx: Kysely<Database>,
    token: { userId: string; purpose: EmailTokenPurpose; hash: string; email: string; now: Date; expiresAt: Date },
  ): Promise<void> {
    await trx
      .insertInto("email_tokens")
      .values({
        id: randomUUID(),
        user_id: token.userId,
        purpose: token.purpose,
        token_hash: token.hash,
        email: token.email,
        created_at: token.now.toISOString(),
        expires_at: token.expiresAt.toISOString(),
        used_at: null,
      })
      .execute();
  }

  /** The live (unspent, unexpired) token with this hash and purpose, without spending it. */
  async findLive(hash: string, purpose: EmailTokenPurpose, now: Date): Promise<EmailTokenRecord | undefined> {
    if (containsNul(hash)) return undefined;
    const row = await this.db
      .selectFrom("email_tokens")
      .select(["id", "user_id", "email"])
      .where("token_hash", "=", hash)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .where("expires_at", ">", now.toISOString())
      .executeTakeFirst();
    return row && { id: row.id, userId: row.user_id, email: row.email };
  }

  /**
   * Spends the live token with this hash and purpose in one conditional write: the caller that gets
   * the row back is the only one that ever will. Undefined when it is unknown, spent, voided or
   * expired (or another caller spent it first).
   */
  async spend(
    trx: Kysely<Database>,
    hash: string,
    purpose: EmailTokenPurpose,
    now: Date,
  ): Promise<EmailTokenRecord | undefined> {
    if (containsNul(hash)) return undefined;
    const at = now.toISOString();
    const row = await trx
      .updateTable("email_tokens")
      .set({ used_at: at })
      .where("token_hash", "=", hash)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .where("expires_at", ">", at)
      .returning(["id", "user_id", "email"])
      .executeTakeFirst();
    return row && { id: row.id, userId: row.user_id, email: row.email };
  }

  /** Voids every live token of the user for `purpose` (a newer one replaces them); returns how many. */
  async voidAll(trx: Kysely<Database>, userId: string, purpose: EmailTokenPurpose, now: Date): Promise<number> {
    const result = await trx
      .updateTable("email_tokens")
      .set({ used_at: now.toISOString() })
      .where("user_id", "=", userId)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** The address of the user's newest live verification token, if any: a change waiting for its link. */
  async pendingAddress(userId: string, now: Date): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("email_tokens")
      .select("email")
      .where("user_id", "=", userId)
      .where("purpose", "=", "email_verification")
      .where("used_at", "is", null)
      .where("expires_at", ">", now.toISOString())
      .orderBy("created_at", "desc")
      .limit(1)
      .executeTakeFirst();
    return row?.email;
  }

  /**
   * Deletes expired tokens (spent and voided ones go once their lifetime is over too), through the
   * expires_at index, PRUNE_BATCH (db/prune-expired.ts) at a time; an unknown token gets the same answer as an
   * expired one. Returns how many went.
   */
  prune(now: Date): Promise<number> {
    return deleteExpired(this.db, "email_tokens", now);
  }
}
