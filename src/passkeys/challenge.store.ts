import { randomUUID } from "node:crypto";

import type { Kysely } from "kysely";

import { containsNul } from "../db/database.js";
import { deleteExpired } from "../db/prune-expired.js";
import type { Database, WebauthnChallengesTable } from "../db/schema.js";

/** What a challenge was issued for: a new passkey, a sign-in, or the second factor of a session. */
export type ChallengePurpose = WebauthnChallengesTable["purpose"];

/** A spent challenge's row: whom and which session it was issued to. */
export interface SpentChallenge {
  purpose: ChallengePurpose;
  userId: string | null;
  sessionId: string | null;
}

/**
 * Which challenges a finish may spend:
 * - `sign-in`: a sign-in's (purpose authentication), whoever started it;
 * - `registration`: one issued to this session of this user for a new passkey;
 * - `second-factor`: a sign-in's started for this user or for nobody in particular (discoverable).
 */
export type ChallengeFilter =
  | { kind: "sign-in" }
  | { kind: "registration"; userId: string; sessionId: string }
  | { kind: "second-factor"; userId: string };

/** Rows pruned per statement, and statements per run, so that a run never holds the table long. */

/**
 * The only code that reads or writes `webauthn_challenges`: the challenges of passkey ceremonies,
 * stored as SHA-256 hashes only (the challenge itself goes to the browser and is never kept or
 * logged). Spending one is ONE conditional UPDATE (`used_at IS NULL AND expires_at > now`, and the
 * purpose and binding of {@link ChallengeFilter}) with RETURNING: of any number of concurrent
 * finishes of one challenge exactly one gets the row back, and a finish of the wrong kind spends
 * nothing.
 */
export class ChallengeStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a challenge's hash. */
  async insert(challenge: {
    hash: string;
    purpose: ChallengePurpose;
    userId: string | null;
    sessionId: string | null;
    now: Date;
    expiresAt: Date;
  }): Promise<void> {
    await this.db
      .insertInto("webauthn_challenges")
      .values({
        id: randomUUID(),
        challenge_hash: challenge.hash,
        purpose: challenge.purpose,
        user_id: challenge.userId,
        session_id: challenge.sessionId,
        created_at: challenge.now.toISOString(),
        expires_at: challenge.expiresAt.toISOString(),
        used_at: null,
      })
      .execute();
  }

  /**
   * Spends the live challenge with this hash that `filter` accepts, in one conditional write; the
   * caller that gets it back is the only one that ever will. Undefined when it is unknown, spent,
   * expired or of another kind or session (or another caller spent it first).
   */
  async spend(hash: string, filter: ChallengeFilter, now: Date): Promise<SpentChallenge | undefined> {
    if (containsNul(hash)) return undefined;
    const at = now.toISOString();
    const row = await this.db
      .updateTable("webauthn_challenges")
      .set({ used_at: at })
      .where("challenge_hash", "=", hash)
      .where("used_at", "is", null)
      .where("expires_at", ">", at)
      .where((eb) => {
        if (filter.kind === "sign-in") return eb("purpose", "=", "authentication");
        if (filter.kind === "registration") {
          return eb.and([
            eb("purpose", "=", "registration"),
            eb("user_id", "=", filter.userId),
            eb("session_id", "=", filter.sessionId),
          ]);
        }
        return eb.and([
          eb("purpose", "=", "authentication"),
          eb.or([eb("user_id", "is", null), eb("user_id", "=", filter.userId)]),
        ]);
      })
      .returning(["purpose", "user_id", "session_id"])
      .executeTakeFirst();
    return row && { purpose: row.purpose, userId: row.user_id, sessionId: row.session_id };
  }

  /**
   * Deletes expired challenges, spent or not, through the expires_at index, PRUNE_BATCH (db/prune-expired.ts) at
   * a time. Returns how many went.
   */
  prune(now: Date): Promise<number> {
    return deleteExpired(this.db, "webauthn_challenges", now);
  }
}
