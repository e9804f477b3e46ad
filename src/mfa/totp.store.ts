import type { Kysely } from "kysely";

import type { Database } from "../db/schema.js";

/** A user's TOTP row as the service needs it. */
export interface TotpRecord {
  /** The secret, sealed (see secret-box.ts). */
  readonly secretEnc: string;
  readonly confirmed: boolean;
  readonly lastStep: number;
}

/**
 * The only code that reads or writes `mfa_totp`: one row per user, unconfirmed until confirmTotp.
 * A code is accepted by one conditional write of its step (`last_step < step`), so of any number of
 * concurrent requests with one code exactly one raises the step, and a code never works twice.
 */
export class TotpStore {
  constructor(private readonly db: Kysely<Database>) {}

  async find(userId: string, db: Kysely<Database> = this.db): Promise<TotpRecord | undefined> {
    const row = await db
      .selectFrom("mfa_totp")
      .select(["secret_enc", "confirmed_at", "last_step"])
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return row && { secretEnc: row.secret_enc, confirmed: row.confirmed_at !== null, lastStep: Number(row.last_step) };
  }

  /**
   * Writes a new unconfirmed enrollment, replacing an unconfirmed one; false (nothing written) when
   * the user has a confirmed TOTP.
   */
  async savePending(userId: string, secretEnc: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const result = await this.db
      .insertInto("mfa_totp")
      .values({ user_id: userId, secret_enc: secretEnc, created_at: at, confirmed_at: null, last_step: 0 })
      .onConflict((oc) =>
        oc
          .column("user_id")
          .doUpdateSet({ secret_enc: secretEnc, created_at: at, last_step: 0 })
          .where("mfa_totp.confirmed_at", "is", null),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  /**
   * Confirms the enrollment whose sealed secret is `secretEnc` (not one that replaced it meanwhile),
   * with `step` as the last accepted; false when there is no such unconfirmed row.
   */
  async confirm(trx: Kysely<Database>, userId: string, secretEnc: string, step: number, now: Date): Promise<boolean> {
    const result = await trx
      .updateTable("mfa_totp")
      .set({ confirmed_at: now.toISOString(), last_step: step })
      .where("user_id", "=", userId)
      .where("secret_enc", "=", secretEnc)
      .where("confirmed_at", "is", null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Accepts a code of `step` for the user's confirmed TOTP: true only for the one write that raised it. */
  async acceptStep(userId: string, step: number, db: Kysely<Database> = this.db): Promise<boolean> {
    const result = await db
      .updateTable("mfa_totp")
      .set({ last_step: step })
      .where("user_id", "=", userId)
      .where("confirmed_at", "is not", null)
      .where("last_step", "<", step)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Replaces the sealed secret (sealed again under a newer key) unless it changed meanwhile. */
  async reseal(userId: string, from: string, to: string): Promise<void> {
    await this.db
      .updateTable("mfa_totp")
      .set({ secret_enc: to })
      .where("user_id", "=", userId)
      .where("secret_enc", "=", from)
      .execute();
  }

  /** Every user id whose secret is sealed under a key other than `currentKeyId`, a page at a time. */
  async sealedWithOtherKeys(currentKeyId: string, after: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom("mfa_totp")
      .select("user_id")
      .where("secret_enc", "not like", `v1.${currentKeyId}.%`)
      .where("user_id", ">", after)
      .orderBy("user_id")
      .limit(limit)
      .execute();
    return rows.map((r) => r.user_id);
  }

  /** Removes the user's TOTP (confirmed or not); true when there was one. */
  async delete(trx: Kysely<Database>, userId: string): Promise<boolean> {
    const result = await trx.deleteFrom("mfa_totp").where("user_id", "=", userId).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }
}
