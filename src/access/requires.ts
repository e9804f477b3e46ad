import "reflect-metadata";

import { type GraphQLSchema, isObjectType } from "graphql";
import { Authorized, Extensions, type MiddlewareFn, UseMiddleware } from "type-graphql";

import { FreshTokenRequiredError } from "../errors.js";
import type { Context } from "./principal.js";
import type { Role } from "./roles.js";
import type { Scope } from "./scopes.js";

/**
 * What a guarded field needs, in one value: the enforcement (type-graphql's `@Authorized` and our
 * auth checker) and the sentence in the field's description are both derived from it.
 *
 * - `{ scope }`: signed in, with a session token or with an API token that has the scope;
 *   `role` adds a role the owner must have (with an API token, the scope ADMIN is what carries it).
 * - `{ session: true }`: a session token only (login, register, refreshToken); API tokens get
 *   FORBIDDEN with reason SCOPE. `fresh` adds that the token must come from a sign-in (login, register, resetPassword, a passkey; verifyMfa keeps it), not a refresh.
 * - `aal: 2` (either kind), step-up: a session that owes its user's second factor gets FORBIDDEN
 *   with reason MFA_REQUIRED; a session at AAL2 passes, and so does one of a user with no second
 *   factor (there is nothing to step up with: MFA_REQUIRED_ROLES is the strict rule). An API token
 *   passes: it cannot hold a second factor, and minting one for a role in MFA_REQUIRED_ROLES needs
 *   AAL2 (api-tokens/api-token.service.ts), so it is checked where the token is created.
 *
 * Every guarded field must say which: there is no requirement without a scope or `session`, so a new
 * field cannot silently be open to every API token.
 */
export type Requirement = (
  | { readonly scope: Scope; readonly role?: Role; readonly session?: never; readonly fresh?: never }
  | { readonly session: true; readonly fresh?: boolean; readonly scope?: never; readonly role?: never }
) & {
  /** 2: step-up, the session must have proven its user's second factor, when the user has one. */
  readonly aal?: 2;
};

/** The schema extension the requirement is recorded under, for the description and for tests. */
export const REQUIREMENT_EXTENSION = "requires";

// Runs after type-graphql's auth middleware, so a principal is always present here, and it is a
// session's (the auth checker refuses API tokens on session-only fields first).
const requireFreshToken: MiddlewareFn<Context> = ({ context }, next) => {
  const principal = context.principal;
  if (principal?.kind !== "session" || !principal.fresh) throw new FreshTokenRequiredError();
  return next();
};

/**
 * Guards a query, mutation, subscription or field with a {@link Requirement}: it applies
 * type-graphql's `@Authorized` with the requirement (the auth checker enforces it), a middleware for
 * `fresh`, and records the requirement as a schema extension, from which
 * {@link describeRequirements} writes the field's description. What is enforced and what Apollo
 * Sandbox shows cannot drift apart.
 */
export function Requires(requirement: Requirement): MethodDecorator & PropertyDecorator {
  const decorators = [
    Authorized<Requirement>(requirement),
    Extensions({ [REQUIREMENT_EXTENSION]: requirement }),
    ...(requirement.fresh ? [UseMiddleware(requireFreshToken)] : []),
  ] as Array<MethodDecorator & PropertyDecorator>;
  return (target: object, key: string | symbol, descriptor?: PropertyDescriptor) => {
    for (const decorator of decorators) decorator(target, key, descriptor!);
  };
}

/** What `aal: 2` adds to a guarded field's sentence. */
export const STEP_UP_TEXT = "at assurance AAL2 (a second factor proven) when the user has one";

/** The sentence a guarded field's description ends with. */
export function requirementText(requirement: Requirement): string {
  const stepUp = requirement.aal === 2 ? ` ${STEP_UP_TEXT}` : "";
  if (requirement.session) {
    return requirement.fresh
      ? `Requires: signed in with a fresh session token (from a sign-in: login, register, resetPassword or a passkey, and verifyMfa after one; not from refreshToken)${stepUp}; API tokens are refused.`
      : `Requires: signed in with a session token${stepUp}; API tokens are refused.`;
  }
  const who = requirement.role ? requirement.role : "signed in";
  return `Requires: ${who}${stepUp}; scope ${requirement.scope}.`;
}

/** The requirement recorded on a field by {@link Requires}, or undefined for an unguarded one. */
export function requirementOf(extensions: Readonly<Record<string, unknown>> | undefined): Requirement | undefined {
  const value = extensions?.[REQUIREMENT_EXTENSION];
  return value && typeof value === "object" ? (value as Requirement) : undefined;
}

/**
 * Appends "Requires: …" to the description of every field guarded by {@link Requires}, in place.
 * Call once on a freshly built schema.
 */
export function describeRequirements(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const requirement = requirementOf(field.extensions);
      if (!requirement) continue;
      const text = requirementText(requirement);
      field.description = field.description ? `${field.description}\n\n${text}` : text;
    }
  }
  return schema;
}
