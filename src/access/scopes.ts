import { registerEnumType } from "type-graphql";

import { Role } from "./roles.js";

/**
 * What an API token may be used for. A token acts for its owner with at most its scopes: its
 * effective rights are the owner's roles intersected with them ({@link effectiveRoles}).
 */
export enum Scope {
  /** `me`, the owner's own data and the other signed-in reads. */
  PROFILE_READ = "PROFILE_READ",
  /** createPost, updatePost, deletePost. */
  POSTS_WRITE = "POSTS_WRITE",
  /** The ADMIN fields; useful only when the owner has the ADMIN role too. */
  ADMIN = "ADMIN",
}

registerEnumType(Scope, {
  name: "Scope",
  description: "What an API token may be used for; it never grants more than its owner's roles.",
  valuesConfig: {
    PROFILE_READ: { description: "me, the owner's own data and the other signed-in reads." },
    POSTS_WRITE: { description: "createPost, updatePost and deletePost." },
    ADMIN: { description: "The ADMIN fields, when the owner has the ADMIN role." },
  },
});

const ALL_SCOPES = new Set<string>(Object.values(Scope));

/** Narrows an unknown value to a scope list, or undefined when it is not one. */
export function parseScopes(value: unknown): Scope[] | undefined {
  if (!Array.isArray(value) || !value.every((s) => typeof s === "string" && ALL_SCOPES.has(s))) return undefined;
  return value as Scope[];
}

/** Removes duplicates and sorts, so stored scope lists have one spelling. */
export function normalizeScopes(scopes: readonly Scope[]): Scope[] {
  return [...new Set(scopes)].sort();
}

/**
 * The roles an API token acts with: its owner's, less ADMIN unless the token has the ADMIN scope.
 * So an ADMIN's POSTS_WRITE token edits only the owner's own posts (the ADMIN override of
 * ownership is an ADMIN right), and an ADMIN-scoped token of a plain user is no ADMIN.
 */
export function effectiveRoles(ownerRoles: readonly Role[], scopes: readonly Scope[]): Role[] {
  return scopes.includes(Scope.ADMIN) ? [...ownerRoles] : ownerRoles.filter((role) => role !== Role.ADMIN);
}

/** The role a scope is useless without: its fields need that role as well as the scope. */
const ROLE_OF_SCOPE: Readonly<Partial<Record<Scope, Role>>> = { [Scope.ADMIN]: Role.ADMIN };

/**
 * The first of `scopes` that `roles` can never use, with the role it needs (the ADMIN scope without
 * the ADMIN role), or undefined when every scope is backed. createApiToken refuses such a token
 * instead of minting one that answers ROLE on every field its scope names.
 */
export function unbackedScope(
  roles: readonly Role[],
  scopes: readonly Scope[],
): { scope: Scope; role: Role } | undefined {
  for (const scope of scopes) {
    const role = ROLE_OF_SCOPE[scope];
    if (role !== undefined && !roles.includes(role)) return { scope, role };
  }
  return undefined;
}
