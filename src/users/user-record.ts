import type { Selectable } from "kysely";

import { parseRoles, Role } from "../access/roles.js";
import { toDate, type UsersTable } from "../db/schema.js";
import type { User } from "./user.type.js";

// A user as stored and as it may leave the service layer, and the normal forms of its unique keys.

/** A stored user, including the password hash that never leaves the service layer. */
export interface UserRecord extends User {
  passwordHash: string;
}

/** The record without its password hash: what may leave the service layer. */
export function toPublicUser({ passwordHash: _passwordHash, ...user }: UserRecord): User {
  return user;
}

/** Thrown by {@link UserStore.insert} when the username is taken, in any letter case. */
export class UsernameTakenError extends Error {
  constructor() {
    super("username is taken");
  }
}

/** Lower-cases a username for the uniqueness check; allowed characters are ASCII only. */
export function normalizeUsername(username: string): string {
  return username.toLowerCase();
}

/**
 * Lower-cases an e-mail address for lookups and the uniqueness of verified addresses. The whole
 * address is lower-cased: providers treat local parts case-insensitively in practice, and an
 * address that differs only in case is one person's.
 */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function toRecord(row: Selectable<UsersTable>): UserRecord {
  const roles = parseRoles(JSON.parse(row.roles));
  if (!roles) throw new Error(`users.roles of ${row.id} is not a role list`);
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    roles,
    email: row.email,
    emailVerified: row.email_verified_at !== null,
    disabled: row.disabled_at !== null,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

export function isActiveAdmin(user: UserRecord): boolean {
  return user.roles.includes(Role.ADMIN) && !user.disabled;
}
