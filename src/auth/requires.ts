import { type GraphQLSchema, isObjectType } from "graphql";
import { Authorized, Extensions } from "type-graphql";

import type { Role } from "../users/role.js";

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

/** The sentence a guarded field's description ends with. */
export function requirementText(roles: readonly string[]): string {
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
      const requirement = requirementText(roles as string[]);
      field.description = field.description ? `${field.description}\n\n${requirement}` : requirement;
    }
  }
  return schema;
}
