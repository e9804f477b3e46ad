import type { Kysely } from "kysely";

import { containsNul } from "../db/database.js";
import { keysetPage } from "../db/keyset.js";
import { type Database, toDate } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";

/** A stored passkey, as the services use it. */
export interface PasskeyRecord {
  id: string;
  userId: string;
  /** base64url, as the authenticator names it. */
  credentialId: string;
  /** The COSE public key. */
  publicKey: Uint8Array<ArrayBuffer>;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

/** What registration stores. */
export type NewPasskey = Omit<PasskeyRecord, "lastUsedAt" | "counter"> & { counter: number };

const COLUMNS = [
  "id",
  "user_id",
  "credential_id",
  "public_key",
  "counter",
  "transports",
  "device_type",
  "backed_up",
  "name",
  "created_at",
  "last_used_at",
] as const;

/** A row as both drivers return it (PostgreSQL's bigint as a string, timestamps as Date or text). */
interface Row {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  counter: number | string;
  transports: string;
  device_type: string;
  backed_up: number;
  name: string;
  created_at: Date | string;
  last_used_at: Date | string | null;
}

function toRecord(row: Row): PasskeyRecord {
  return {
    id: row.id,
    userId: row.user_id,
    credentialId: row.credential_id,
    publicKey: new Uint8Array(Buffer.from(row.public_key, "base64url")),
    counter: Number(row.counter),
    transports: row.transports.split(",").filter((t) => t !== ""),
    deviceType: row.device_type,
    backedUp: Number(row.backed_up) === 1,
    name: row.name,
    createdAt: toDate(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : toDate(row.last_used_at),
  };
}

/**
 * The only code that reads or writes `passkeys`: the WebAuthn credentials of users, with their
 * signature counter and backup flags. A new passkey is written in a transaction that holds the
 * user's row (locked on PostgreSQL) and counts theirs, so the cap per user holds under concurrent
 * registrations; a use moves the counter by one conditional UPDATE, so it never goes backwards.
 */
export class PasskeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every passkey of the user, oldest first (at most PASSKEYS_MAX_PER_USER of them): for sign-in options and the cap. */
  async allOf(userId: string): Promise<PasskeyRecord[]> {
    if (containsNul(userId)) return [];
    const rows = await this.db
      .selectFrom("passkeys")
      .select(COLUMNS)
      .where("user_id", "=", userId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toRecord);
  }

  /**
   * A page of the user's passkeys, oldest first, through passkeys_user_created_idx: after the passkey
   * `page.after` (one of the user's) when given, else skipping `page.offset`. Undefined when the
   * user has no passkey with the id `after`.
   */
  async listOf(userId: string, page: Page): Promise<PasskeyRecord[] | undefined> {
    if (containsNul(userId) || (page.after !== undefined && containsNul(page.after))) return undefined;
    let after: { created_at: Date | string; id: string } | undefined;
    if (page.after !== undefined) {
      after = await this.db
        .selectFrom("passkeys")
        .select(["created_at", "id"])
        .where("id", "=", page.after)
        .where("user_id", "=", userId)
        .executeTakeFirst();
      if (!after) return undefined;
    }
    const mine = this.db.selectFrom("passkeys").select(COLUMNS).where("user_id", "=", userId);
    const rows = await keysetPage(mine, page, after && { at: after.created_at, id: after.id }, {
      column: "created_at",
      direction: "asc",
    }).execute();
    return rows.map(toRecord);
  }

  /** The passkey with this credential id, whoever's it is. */
  async findByCredentialId(credentialId: string): Promise<PasskeyRecord | undefined> {
    if (containsNul(credentialId)) return undefined;
    const row = await this.db
      .selectFrom("passkeys")
      .select(COLUMNS)
      .where("credential_id", "=", credentialId)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  /** The passkey with this id, whoever's it is. */
  async findById(id: string): Promise<PasskeyRecord | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db.selectFrom("passkeys").select(COLUMNS).where("id", "=", id).executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * Stores `passkey` in the caller's transaction `trx` (which holds the user's row) unless the user
   * has `max` already or the credential is registered (to anyone): "too-many", "taken". Also says
   * whether the user had no passkey before.
   */
  async insert(
    trx: Kysely<Database>,
    passkey: NewPasskey,
    max: number,
  ): Promise<{ stored: PasskeyRecord; count: number } | "too-many" | "taken"> {
    const counted = await trx
      .selectFrom("passkeys")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("user_id", "=", passkey.userId)
      .executeTakeFirstOrThrow();
    const count = Number(counted.n);
    if (count >= max) return "too-many";
    const existing = await trx
      .selectFrom("passkeys")
      .select("id")
      .where("credential_id", "=", passkey.credentialId)
      .executeTakeFirst();
    if (existing) return "taken";
    const row = await trx
      .insertInto("passkeys")
      .values({
        id: passkey.id,
        user_id: passkey.userId,
        credential_id: passkey.credentialId,
        public_key: Buffer.from(passkey.publicKey).toString("base64url"),
        counter: passkey.counter,
        transports: passkey.transports.join(","),
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp ? 1 : 0,
        name: passkey.name,
        created_at: passkey.createdAt.toISOString(),
        last_used_at: null,
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return { stored: toRecord(row), count: count + 1 };
  }

  /**
   * Records a verified use: the new counter, backup state and time, in one conditional UPDATE that
   * only moves the counter forwards (an authenticator that keeps no counter reports 0 each time,
   * and stays at 0). False when the stored counter is already at or past `counter`: a cloned
   * authenticator, or a concurrent use of the same count.
   */
  async recordUse(id: string, use: { counter: number; backedUp: boolean; at: Date }): Promise<boolean> {
    const result = await this.db
      .updateTable("passkeys")
      .set({ counter: use.counter, backed_up: use.backedUp ? 1 : 0, last_used_at: use.at.toISOString() })
      .where("id", "=", id)
      .where((eb) => (use.counter === 0 ? eb("counter", "=", 0) : eb("counter", "<", use.counter)))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Deletes one of the user's passkeys; false when it was not there (any more). */
  async delete(id: string, userId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom("passkeys")
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }
}
