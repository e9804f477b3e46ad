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
  /** With TRUSTED_DOCUMENTS: any document, not only the manifest's (the limits still apply). Owner must be an ADMIN. */
  OPERATIONS_ANY = "OPERATIONS_ANY",
  /** POST /oauth/introspect: asking whether another token is live (RFC 7662). Owner must be an ADMIN. */
  INTROSPECT = "INTROSPECT",
}

registerEnumType(Scope, {
  name: "Scope",
  description: "What an API token may be used for; it never grants more than its owner's roles.",
  valuesConfig: {
    PROFILE_READ: { description: "me, the owner's own data and the other signed-in reads." },
    POSTS_WRITE: { description: "createPost, updatePost and deletePost." },
    ADMIN: { description: "The ADMIN fields, when the owner has the ADMIN role." },
    OPERATIONS_ANY: {
      description:
        "With a trusted-documents manifest, send any document, not only the listed ones; when the owner has the ADMIN role.",
    },
    INTROSPECT: {
      description: "Ask POST /oauth/introspect whether a token is live (RFC 7662); when the owner has the ADMIN role.",
    },
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

/**
 * The role a scope is useless without: its fields need that role as well as the scope. OPERATIONS_ANY
 * and INTROSPECT are an operator's rights: a user who could mint them could probe the schema past the
 * manifest, or ask about any token.
 */
const ROLE_OF_SCOPE: Readonly<Partial<Record<Scope, Role>>> = {
  [Scope.ADMIN]: Role.ADMIN,
  [Scope.OPERATIONS_ANY]: Role.ADMIN,
  [Scope.INTROSPECT]: Role.ADMIN,
};

/**
 * Whether an API token holds `scope` in force: granted, and backed by its owner's roles as they are
 * now (an OPERATIONS_ANY token whose owner is no longer an ADMIN sends only listed documents).
 */
export function scopeInForce(ownerRoles: readonly Role[], scopes: readonly Scope[], scope: Scope): boolean {
  if (!scopes.includes(scope)) return false;
  const role = ROLE_OF_SCOPE[scope];
  return role === undefined || ownerRoles.includes(role);
}

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
