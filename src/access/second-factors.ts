import { type Kysely, sql } from "kysely";

import { containsNul } from "../db/database.js";
import type { Database } from "../db/schema.js";

/**
 * Whether a user has a second factor: a confirmed TOTP or any passkey. A named cross-table reader
 * (docs/development.md): the sessions feature asks it inside a new session's transaction, below
 * the multi-factor and passkey features that own those tables, so that the rule of
 * access/assurance.ts is applied where every token is issued without `sessions/` depending on them.
 */
export async function hasSecondFactor(db: Kysely<Database>, userId: string): Promise<boolean> {
  if (containsNul(userId)) return false;
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .exists(
          eb
            .selectFrom("mfa_totp")
            .select(sql.lit(1).as("one"))
            .where("user_id", "=", userId)
            .where("confirmed_at", "is not", null),
        )
        .as("totp"),
      eb.exists(eb.selectFrom("passkeys").select(sql.lit(1).as("one")).where("user_id", "=", userId)).as("passkey"),
    ])
    .executeTakeFirstOrThrow();
  return Boolean(Number(row.totp)) || Boolean(Number(row.passkey));
}
