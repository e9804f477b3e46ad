import { type GraphQLSchema, isObjectType } from "graphql";
import { Authorized, Extensions, type MiddlewareFn, UseMiddleware } from "type-graphql";

import type { Context } from "./principal.js";
import { FreshTokenRequiredError } from "../errors.js";
import type { Role } from "./roles.js";

const EXTENSION = "requires";

/**
 * Guards a query, mutation or field: `@Requires()` means signed in, `@Requires(Role.ADMIN)` means
 * that role. It applies type-graphql's `@Authorized` (which enforces it) and records the same roles
 * as a schema extension, from which {@link describeRequirements} writes the field's description:
 * what is enforced and what Apollo Sandbox shows cannot drift apart.
 */
export function Requires(...roles: Role[]): MethodDecorator & PropertyDecorator {
  const authorized = Authorized(...roles) as MethodDecorator & PropertyDecorator;
  const extension = Extensions({ [EXTENSION]: roles }) as MethodDecorator & PropertyDecorator;
  return (target: object, key: string | symbol, descriptor?: PropertyDescriptor) => {
    authorized(target, key, descriptor!);
    extension(target, key, descriptor!);
  };
}

const FRESH_EXTENSION = "requiresFresh";

// Runs after type-graphql's auth middleware, so a principal is always present here.
const requireFreshToken: MiddlewareFn<Context> = ({ context }, next) => {
  if (!context.principal?.fresh) throw new FreshTokenRequiredError();
  return next();
};

/**
 * Guards a sensitive mutation: signed in, with a fresh token (one minted by `login` or `register`,
 * not by `refreshToken`), otherwise FRESH_TOKEN_REQUIRED. Like {@link Requires}, the same decorator
 * both enforces the rule and writes it into the schema description.
 */
export function RequiresFresh(): MethodDecorator {
  const authorized = Authorized() as MethodDecorator;
  const guard = UseMiddleware(requireFreshToken) as MethodDecorator;
  const extension = Extensions({ [EXTENSION]: [], [FRESH_EXTENSION]: true }) as MethodDecorator;
  return (target, key, descriptor) => {
    authorized(target, key, descriptor);
    guard(target, key, descriptor);
    extension(target, key, descriptor);
  };
}

/** The sentence a guarded field's description ends with. */
export function requirementText(roles: readonly string[], fresh = false): string {
  if (fresh) return "Requires: signed in with a fresh token (from login or register, not from refreshToken).";
  return roles.length === 0 ? "Requires: signed in." : `Requires: ${roles.join(" or ")}.`;
}

/**
 * Appends "Requires: …" to the description of every field guarded by {@link Requires}, in place.
 * Call once on a freshly built schema.
 */
export function describeRequirements(schema: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const roles = field.extensions?.[EXTENSION];
      if (!Array.isArray(roles)) continue;
      const requirement = requirementText(roles as string[], field.extensions?.[FRESH_EXTENSION] === true);
      field.description = field.description ? `${field.description}\n\n${requirement}` : requirement;
    }
  }
  return schema;
}
