import type { Kysely } from "kysely";

import type { Database } from "../db/schema.js";

/** What {@link removeAllFactors} removed. */
export interface RemovedFactors {
  readonly totp: number;
  readonly recoveryCodes: number;
  readonly passkeys: number;
}

/**
 * Removes every second factor of a user in the caller's transaction: the TOTP row, the recovery
 * codes, the passkeys and their pending WebAuthn challenges (resetUserMfa). A named cross-table
 * writer (docs/development.md's owners table): the passkey rows belong to passkeys/, which this
 * folder does not import, like accounts/account.store.ts deleting every row of an account.
 */
export async function removeAllFactors(trx: Kysely<Database>, userId: string): Promise<RemovedFactors> {
  const totp = await trx.deleteFrom("mfa_totp").where("user_id", "=", userId).executeTakeFirst();
  const codes = await trx.deleteFrom("mfa_recovery_codes").where("user_id", "=", userId).executeTakeFirst();
  const passkeys = await trx.deleteFrom("passkeys").where("user_id", "=", userId).executeTakeFirst();
  await trx.deleteFrom("webauthn_challenges").where("user_id", "=", userId).execute();
  return {
    totp: Number(totp.numDeletedRows),
    recoveryCodes: Number(codes.numDeletedRows),
    passkeys: Number(passkeys.numDeletedRows),
  };
}

/**
 * Which of these users have a second factor (a confirmed TOTP or a passkey), in one query for a
 * page of users (`User.mfaEnabled`). A named cross-table reader, like access/second-factors.ts.
 */
export async function usersWithSecondFactor(db: Kysely<Database>, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rows = await db
    .selectFrom("mfa_totp")
    .select("user_id")
    .where("user_id", "in", userIds)
    .where("confirmed_at", "is not", null)
    .union(db.selectFrom("passkeys").select("user_id").where("user_id", "in", userIds))
    .execute();
  return new Set(rows.map((r) => r.user_id));
}
