import { registerEnumType } from "type-graphql";

/** What a user may do. Every user has USER; ADMIN grants the admin-only fields. */
export enum Role {
  USER = "USER",
  ADMIN = "ADMIN",
}

registerEnumType(Role, { name: "Role", description: "What a user may do." });

const ALL_ROLES = new Set<string>(Object.values(Role));

/** Narrows an unknown value to a role list, or undefined when it is not one. */
export function parseRoles(value: unknown): Role[] | undefined {
  if (!Array.isArray(value) || !value.every((r) => typeof r === "string" && ALL_ROLES.has(r))) return undefined;
  return value as Role[];
}

/** Removes duplicates and sorts, so that stored and compared role lists have one spelling. */
export function normalizeRoles(roles: readonly Role[]): Role[] {
  return [...new Set(roles)].sort();
}
