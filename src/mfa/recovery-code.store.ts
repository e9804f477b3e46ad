import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";

import type { Database } from "../db/schema.js";

/**
 * The only code that reads or writes `mfa_recovery_codes`: SHA-256 hashes of a user's recovery
 * codes. A code is spent by one conditional write (`used_at IS NULL`), so of any number of
 * concurrent requests with one code exactly one gets it.
 */
export class RecoveryCodeStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Replaces every code of the user with these hashes, in the caller's transaction. */
  async replace(trx: Kysely<Database>, userId: string, hashes: readonly string[], now: Date): Promise<void> {
    await trx.deleteFrom("mfa_recovery_codes").where("user_id", "=", userId).execute();
    await trx
      .insertInto("mfa_recovery_codes")
      .values(
        hashes.map((hash) => ({
          id: randomUUID(),
          user_id: userId,
          code_hash: hash,
          created_at: now.toISOString(),
          used_at: null,
        })),
      )
      .execute();
  }

  /** Spends the user's unused code with this hash: true only for the one write that spent it. */
  async spend(userId: string, hash: string, now: Date, db: Kysely<Database> = this.db): Promise<boolean> {
    const result = await db
      .updateTable("mfa_recovery_codes")
      .set({ used_at: now.toISOString() })
      .where("user_id", "=", userId)
      .where("code_hash", "=", hash)
      .where("used_at", "is", null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** How many unused codes each of these users has (users with none are absent). */
  async remaining(userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("mfa_recovery_codes")
      .select(["user_id", (eb) => eb.fn.countAll<number | string>().as("n")])
      .where("user_id", "in", userIds)
      .where("used_at", "is", null)
      .groupBy("user_id")
      .execute();
    return new Map(rows.map((r) => [r.user_id, Number(r.n)]));
  }

  /** Removes every code of the user; how many there were. */
  async deleteAll(trx: Kysely<Database>, userId: string): Promise<number> {
    const result = await trx.deleteFrom("mfa_recovery_codes").where("user_id", "=", userId).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
