import { type Kysely, sql } from "kysely";

import { normalizeRoles, Role } from "../access/roles.js";
import { containsNul, type Dialect, isUniqueViolation, serializedTransaction } from "../db/database.js";
import { keysetPage } from "../db/keyset.js";
import type { Database } from "../db/schema.js";
import type { Page } from "../graphql/pagination.js";
import {
  isActiveAdmin,
  normalizeEmail,
  normalizeUsername,
  toRecord,
  UsernameTakenError,
  type UserRecord,
} from "./user-record.js";

/**
 * The only code that reads or writes the `users` table, with two named exceptions: deleting an
 * account (accounts/account.store.ts, one transaction over every table holding the user's data)
 * and the reads of other tables' owners that join the owner's state (api-tokens/api-token.store.ts's
 * bearer lookup, access/revocation.store.ts's changed roles).
 */
export class UserStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /**
   * Inserts a user, in `db` (a transaction of the caller's) or the database; the database's unique
   * index decides races between equal names. `email`, when given, is stored unverified.
   */
  async insert(
    user: {
      id: string;
      username: string;
      passwordHash: string;
      roles: readonly Role[];
      email?: string;
      now: Date;
    },
    db: Kysely<Database> = this.db,
  ): Promise<UserRecord> {
    const at = user.now.toISOString();
    try {
      const row = await db
        .insertInto("users")
        .values({
          id: user.id,
          username: user.username,
          username_normalized: normalizeUsername(user.username),
          password_hash: user.passwordHash,
          roles: JSON.stringify(normalizeRoles(user.roles)),
          email: user.email ?? null,
          email_normalized: user.email === undefined ? null : normalizeEmail(user.email),
          created_at: at,
          updated_at: at,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRecord(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new UsernameTakenError();
      throw error;
    }
  }

  async findById(id: string): Promise<UserRecord | undefined> {
    if (containsNul(id)) return undefined;
    const row = await this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    return row && toRecord(row);
  }

  /** The users with these ids, in no particular order; unknown ids are left out. */
  async findByIds(ids: readonly string[]): Promise<UserRecord[]> {
    const wanted = [...new Set(ids)].filter((id) => !containsNul(id));
    if (wanted.length === 0) return [];
    const rows = await this.db.selectFrom("users").selectAll().where("id", "in", wanted).execute();
    return rows.map(toRecord);
  }

  async findByUsername(username: string): Promise<UserRecord | undefined> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("username_normalized", "=", normalizeUsername(username))
      .executeTakeFirst();
    return row && toRecord(row);
  }

  /** The user whose VERIFIED address is `email` (in any letter case); unverified addresses find nobody. */
  async findByVerifiedEmail(email: string, db: Kysely<Database> = this.db): Promise<UserRecord | undefined> {
    if (containsNul(email)) return undefined;
    const row = await db
      .selectFrom("users")
      .selectAll()
      .where("email_normalized", "=", normalizeEmail(email))
      .where("email_verified_at", "is not", null)
      .executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * Makes `email` the user's verified address, in the caller's transaction `trx`. Returns
   * "taken" when another account verified the same address first (users_verified_email_idx decides
   * races); on PostgreSQL the failed statement aborts `trx`, so the caller must end it.
   */
  async setVerifiedEmail(trx: Kysely<Database>, id: string, email: string, now: Date): Promise<"set" | "taken"> {
    try {
      await trx
        .updateTable("users")
        .set({
          email,
          email_normalized: normalizeEmail(email),
          email_verified_at: now.toISOString(),
          updated_at: now.toISOString(),
        })
        .where("id", "=", id)
        .execute();
      return "set";
    } catch (error) {
      if (isUniqueViolation(error)) return "taken";
      throw error;
    }
  }

  /**
   * A page of the users, oldest first, read through users_created_id_idx: after the user
   * `page.after` when given, else skipping `page.offset`. Undefined when no user has the id `after`.
   */
  async list(page: Page): Promise<UserRecord[] | undefined> {
    let after: { created_at: Date | string; id: string } | undefined;
    if (page.after !== undefined) {
      if (containsNul(page.after)) return undefined;
      after = await this.db
        .selectFrom("users")
        .select(["created_at", "id"])
        .where("id", "=", page.after)
        .executeTakeFirst();
      if (!after) return undefined;
    }
    const rows = await keysetPage(
      this.db.selectFrom("users").selectAll(),
      page,
      after && { at: after.created_at, id: after.id },
      { column: "created_at", direction: "asc" },
    ).execute();
    return rows.map(toRecord);
  }

  /**
   * Runs `work` in a transaction that may take ADMIN from an account or remove an active one,
   * serialised with every other such transaction (see {@link serializedTransaction}): on PostgreSQL
   * under one advisory lock, so two ADMINs demoting, disabling or deleting each other at the same
   * moment run one after the other (one succeeds, the other sees it is now the last admin) instead
   * of locking each other's rows in opposite orders and deadlocking; on SQLite with BEGIN IMMEDIATE.
   */
  lastAdminTransaction<T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return serializedTransaction(this.db, this.dialect, "last-admin", work);
  }

  /**
   * Replaces a user's roles, refusing (returning "last-admin") to take ADMIN from the only active
   * admin left, so the service can never lock every administrator out (a disabled admin does not
   * count: they cannot sign in). The check and the write share one {@link lastAdminTransaction}, so
   * two admins demoting each other at the same moment cannot both succeed, and never deadlock.
   */
  async setRoles(id: string, roles: readonly Role[], now: Date): Promise<UserRecord | "not-found" | "last-admin"> {
    if (containsNul(id)) return "not-found";
    return this.lastAdminTransaction(async (trx) => {
      const current = await this.lockedUser(trx, id);
      if (!current) return "not-found";
      if (isActiveAdmin(current) && !roles.includes(Role.ADMIN) && (await this.activeAdminCount(trx)) <= 1) {
        return "last-admin";
      }
      const row = await trx
        .updateTable("users")
        .set({
          roles: JSON.stringify(normalizeRoles(roles)),
          updated_at: now.toISOString(),
          roles_changed_at: now.toISOString(),
        })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toRecord(row);
    });
  }

  /**
   * Disables or enables an account. Refuses ("last-admin") to disable the last active ADMIN, with
   * the same locking as {@link setRoles}. `changed` is false when the account already was so.
   */
  async setDisabled(
    id: string,
    disabled: boolean,
    now: Date,
  ): Promise<{ user: UserRecord; changed: boolean } | "not-found" | "last-admin"> {
    if (containsNul(id)) return "not-found";
    return this.lastAdminTransaction(async (trx) => {
      const current = await this.lockedUser(trx, id);
      if (!current) return "not-found";
      if (current.disabled === disabled) return { user: current, changed: false };
      if (disabled && isActiveAdmin(current) && (await this.activeAdminCount(trx)) <= 1) return "last-admin";
      const row = await trx
        .updateTable("users")
        .set({ disabled_at: disabled ? now.toISOString() : null, updated_at: now.toISOString() })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { user: toRecord(row), changed: true };
    });
  }

  /**
   * Whether the user exists and is the only active ADMIN, checked inside the caller's
   * {@link lastAdminTransaction} `trx` with the same locks as {@link setRoles}, for a caller about
   * to remove the account.
   */
  async adminStatus(trx: Kysely<Database>, id: string): Promise<"not-found" | "last-admin" | "removable"> {
    const current = await this.lockedUser(trx, id);
    if (!current) return "not-found";
    return isActiveAdmin(current) && (await this.activeAdminCount(trx)) <= 1 ? "last-admin" : "removable";
  }

  /**
   * Whether the user exists and is not disabled, read in the caller's transaction `trx`; on
   * PostgreSQL the row stays locked to its end, so a setDisabled running at the same moment either
   * waits for that transaction and sees what it wrote, or is seen here.
   */
  async isActiveLocked(trx: Kysely<Database>, id: string): Promise<boolean> {
    const row = await trx
      .selectFrom("users")
      .select("id")
      .where("id", "=", id)
      .where("disabled_at", "is", null)
      .$if(this.dialect === "postgres", (q) => q.forUpdate())
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The user's row, locked for the rest of the transaction on PostgreSQL. */
  private async lockedUser(trx: Kysely<Database>, id: string): Promise<UserRecord | undefined> {
    const row = await trx
      .selectFrom("users")
      .selectAll()
      .where("id", "=", id)
      .$if(this.dialect === "postgres", (q) => q.forUpdate())
      .executeTakeFirst();
    return row && toRecord(row);
  }

  /**
   * How many accounts hold ADMIN and are not disabled; their rows are locked on PostgreSQL, in id
   * order. Read through users_active_admin_idx (migration 0012), whose predicate this WHERE repeats
   * literally (a literal, not a parameter: the planners prove a partial index applies only so), so
   * it reads the admins' rows and not every user's.
   */
  private async activeAdminCount(trx: Kysely<Database>): Promise<number> {
    const admins = await trx
      .selectFrom("users")
      .select("id")
      .where("roles", "like", sql.lit(`%"${Role.ADMIN}"%`))
      .where("disabled_at", "is", null)
      .orderBy("id")
      .$if(this.dialect === "postgres", (q) => q.forUpdate())
      .execute();
    return admins.length;
  }

  /** Adds a role to an existing user (used by the admin bootstrap); returns the updated record. */
  async addRole(id: string, role: Role, now: Date): Promise<UserRecord | undefined> {
    const user = await this.findById(id);
    if (!user) return undefined;
    if (user.roles.includes(role)) return user;
    const row = await this.db
      .updateTable("users")
      .set({
        roles: JSON.stringify(normalizeRoles([...user.roles, role])),
        updated_at: now.toISOString(),
        roles_changed_at: now.toISOString(),
      })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRecord(row);
  }

  /** Replaces a user's password hash, in `db` (a transaction of the caller's) or the database. */
  async setPasswordHash(id: string, passwordHash: string, now: Date, db: Kysely<Database> = this.db): Promise<void> {
    await db
      .updateTable("users")
      .set({ password_hash: passwordHash, updated_at: now.toISOString() })
      .where("id", "=", id)
      .execute();
  }
}
